"""The scaling-matrix flow on the real single-node SLURM (and the same policy on the local launcher).

Uses ``tests/fixtures/flaky_nemo.py`` (a named test stand-in for NeMo with injected faults) in
front of the real tiny engine.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from flows.matrix import scaling_matrix
from scaling_matrix.adapters.store import ResultsStore
from scaling_matrix.paths import results_url
from scaling_matrix.report import report_rows
from tests.slurm.conftest import in_ci, slurm_problem

FIX = Path(__file__).resolve().parents[1] / "fixtures"
QUICK = str(FIX / "matrices" / "quick.yaml")


@pytest.fixture
def need_slurm() -> None:
    problem = slurm_problem()
    if problem:
        (pytest.fail if in_ci() else pytest.skip)(problem)


def write_profile(tmp_path: Path, launcher: str, faults: str = "", **extra: object) -> str:
    """Write a test profile (local or slurm) and return its path."""
    data: dict[str, object] = {"name": f"test-{launcher}", "launcher": launcher, "workload": "tiny",
                               "device": "cpu", "capacity_gpus": 2 if launcher == "local" else 8,
                               "retries": 1, "retry_delay_s": 0.5, "cluster": f"test-{launcher}"}
    if launcher == "slurm":
        data["slurm"] = {"partition": "gpu", "time_limit": "00:20:00", "cpus_per_task": 1, "poll_interval_s": 1}
    if faults:
        data["executable"] = [sys.executable, str(FIX / "flaky_nemo.py"), "--faults", faults]
    data.update(extra)
    path = tmp_path / f"profile-{launcher}.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


@pytest.mark.parametrize("launcher", ["local", pytest.param("slurm", marks=pytest.mark.slurm)])
def test_transient_failure_retried_permanent_not(launcher: str, scaling_home: Path, tmp_path: Path,
                                                 request: pytest.FixtureRequest) -> None:
    if launcher == "slurm":
        request.getfixturevalue("need_slurm")
    profile = write_profile(tmp_path, launcher, faults="1=nccl_once,2=oom")
    state = scaling_matrix(matrix=QUICK, profile=profile, run_id=f"retry-{launcher}", return_state=True)
    assert state.is_failed()  # the OOM cell failed for good
    store = ResultsStore(results_url())
    cells = {c["gpus"]: c for c in store.cells(f"retry-{launcher}")}
    g1 = store.attempts(f"retry-{launcher}", cells[1]["cell_id"])
    g2 = store.attempts(f"retry-{launcher}", cells[2]["cell_id"])
    assert [a["failure_class"] for a in g1] == ["nccl_timeout", "completed"]
    assert cells[1]["status"] == "completed" and cells[1]["attempts"] == 2
    assert [a["failure_class"] for a in g2] == ["oom"]  # OOM is never retried
    assert cells[2]["status"] == "failed" and cells[2]["failure_class"] == "oom"
    if launcher == "slurm":
        assert g1[0]["job_id"] != g1[1]["job_id"]  # retried by resubmitting


def _node_and_partition() -> tuple[str, str]:
    node = subprocess.run(["scontrol", "-o", "show", "node"], capture_output=True, text=True).stdout
    part = subprocess.run(["scontrol", "-o", "show", "partition"], capture_output=True, text=True).stdout
    return node, part


def _overlap_s(a: dict, b: dict) -> float:
    """Return how many seconds two cells' jobs ran at the same time (sacct/scontrol start and end)."""
    start = max(a["started_at"], b["started_at"])
    end = min(a["finished_at"], b["finished_at"])
    return max(0.0, (end - start).total_seconds())


@pytest.mark.slurm
def test_smoke_on_slurm_local_scales_like_local(need_slurm: None, scaling_home: Path) -> None:
    """The shipped ``smoke`` matrix on the ``local`` and ``slurm-local`` profiles: same results shape,
    same time-scaling direction, and on SLURM the cells never share a core (they wait instead)."""
    node, part = _node_and_partition()
    assert f"CPUTot={os.cpu_count()} " in node, "slurm.conf must declare the host's real CPUs (nproc)"
    assert "OverSubscribe=NO" in part, "jobs must not share cores (scripts/local-slurm.sh up)"
    for profile in ("local", "slurm-local"):
        state = scaling_matrix(matrix="smoke", profile=profile, run_id=f"smoke-{profile}", return_state=True)
        assert state.is_completed(), state.message
    store = ResultsStore(results_url())
    local, slurm = report_rows(store.cells("smoke-local")), report_rows(store.cells("smoke-slurm-local"))
    assert [set(r) for r in local] == [set(r) for r in slurm]
    assert [(r["gpus"], r["status"]) for r in local] == [(r["gpus"], r["status"]) for r in slurm]
    for row in slurm:
        assert row["step_time_s"] > 0 and row["peak_mem_mib"] > 0 and row["final_loss"] < row["first_loss"]
        assert row["wall_clock_s"] > 0 and row["cluster"] == "local-slurm"
    ratio = {name: next(r["time_scaling"] for r in rows if r["gpus"] == 2)
             for name, rows in (("local", local), ("slurm-local", slurm))}
    print(f"2-rank time scaling: local {ratio['local']:.2f}, slurm-local {ratio['slurm-local']:.2f}")
    # Timings are printed, never asserted (BENCHMARKS.md). What kept the two apart before (0.62 on
    # slurm-local vs 1.32 on local) was cells sharing cores: asserted below as no overlap in time.
    g1, g2 = sorted(store.cells("smoke-slurm-local"), key=lambda c: c["gpus"])
    if (os.cpu_count() or 1) < g1["gpus"] + g2["gpus"]:  # cpus_per_task=1: one core per rank
        assert _overlap_s(g1, g2) < 1.0, "a 1-rank and a 2-rank job ran at once on too few cores"
    attempts = store.attempts("smoke-slurm-local")
    assert len(attempts) == 2 and all(a["job_id"] and a["attempt"] == 1 for a in attempts)


@pytest.mark.slurm
def test_singularity_argv_end_to_end_on_slurm(need_slurm: None, scaling_home: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """srun -> singularity exec -B ... IMAGE -> tiny engine, through a recording singularity stand-in."""
    import hashlib
    import socket

    image = tmp_path / "nemo_25.07.sif"
    image.write_bytes(b"not a real image, only its digest matters" * 100)
    log = tmp_path / "singularity-argv.log"
    monkeypatch.setenv("PATH", f"{FIX / 'bin'}:{__import__('os').environ['PATH']}")
    monkeypatch.setenv("SINGULARITY_STANDIN_LOG", str(log))
    profile = write_profile(tmp_path, "slurm", container={"runtime": "singularity", "image": str(image),
                                                          "binds": [f"{tmp_path}:{tmp_path}"]})
    state = scaling_matrix(matrix=QUICK, profile=profile, run_id="sif", return_state=True)
    assert state.is_completed(), state.message
    calls = [c.split("\0")[:-1] for c in log.read_text().split("\0\n") if c]
    finetunes = [c for c in calls if "finetune" in c]
    assert len(finetunes) == 1 + 2  # one per rank: srun runs the wrapper on every task
    for argv in finetunes:
        assert argv[:4] == ["exec", "-B", f"{tmp_path}:{tmp_path}", str(image)]
        assert "--nv" not in argv  # CPU workload
        assert argv[5:9] == ["-m", "scaling_matrix.tiny", "llm", "finetune"]
    store = ResultsStore(results_url())
    run = store.run("sif")
    assert run["provenance"]["container_digest"] == "sha256:" + hashlib.sha256(image.read_bytes()).hexdigest()
    cell = store.cells("sif")[0]
    assert cell["provenance"]["nodelist"] == socket.gethostname().split(".")[0]
    assert cell["provenance"]["queue_wait_s"] is not None
