"""Smoke test of ``benchmarks/orchestration.py`` on the real SLURM: 4 sleep cells, every way.

Asserts the structure of what the benchmark reports (every way ran all 4 jobs and saw them end, every
number it prints is there and sane, the re-attach tracked every job, ``plan`` was timed), never a
timing target: timings belong in BENCHMARKS.md, not in the suite.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from tests.slurm.conftest import in_ci, slurm_problem

pytestmark = [pytest.mark.slurm, pytest.mark.server, pytest.mark.slow]
BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "orchestration.py"
WAYS = ["raw", "submitit", "cli", "deployment"]


def test_orchestration_benchmark_runs_every_way_on_four_cells(tmp_path: Path) -> None:
    problem = slurm_problem()
    if problem:
        (pytest.fail if in_ci() else pytest.skip)(problem)
    out = tmp_path / "out.json"
    proc = subprocess.run([sys.executable, str(BENCH), "--sizes", "4", "--sleep", "1", "--interval", "1",
                           "--reattach", "4", "--reattach-sleep", "5", "--plan", "8", "--wait-idle", "0",
                           "--work", str(tmp_path / "work"), "--out", str(out)],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:] + proc.stdout[-2000:]
    doc = json.loads(out.read_text())
    rows = {r["way"]: r for r in doc["rows"]}
    assert sorted(rows) == sorted(WAYS), rows.keys()
    for way, r in rows.items():
        assert (r["n"], r["ok"], r["detected"], r["workload"]) == (4, 4, 4, "sleep"), (way, r)
        # a job's end is known after SLURM recorded it (sacct keeps whole seconds, rounded down)
        assert 0 <= r["detect_median_s"] <= r["detect_max_s"] < 120, (way, r)
        assert 0 < r["startup_s"] <= r["submit_all_s"] < r["makespan_s"] <= r["wall_s"] + 1e-6, (way, r)
        assert r["rpc_ctld"] > 0 and r["rpc_by_type"], (way, r)  # four sbatch at least
        if way != "raw":
            assert math.isfinite(r["makespan_s_x_raw"]) and math.isfinite(r["overhead_per_cell_ms"]), (way, r)
    assert "REQUEST_SUBMIT_BATCH_JOB" in rows["raw"]["rpc_by_type"], rows["raw"]["rpc_by_type"]
    assert doc["reattach"]["jobs"] == 4 and 0 < doc["reattach"]["tracked_again_s"] < 300, doc["reattach"]
    assert doc["plan_sleep_8_s"] > 0 and doc["plan_nemo_ibex_8_s"] > 0, doc
    cli_logs = list((tmp_path / "work" / "home").glob("cli-4-*.log"))
    assert len(cli_logs) == 1, cli_logs
    # the CLI started Prefect's temporary server early and the flow reused it (a second start: 2 lines)
    assert cli_logs[0].read_text().count("Starting temporary server") == 1, cli_logs[0].read_text()[-3000:]
    table = proc.stdout.splitlines()
    assert sum(line.startswith(("| raw |", "| submitit |", "| cli |", "| deployment |")) for line in table) == 4


def test_no_early_server_when_the_run_talks_to_a_server() -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.early_api import start_api_early, wait_for_api

    with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:9/api"}):
        assert start_api_early() is None
    wait_for_api(None)  # nothing to wait for
