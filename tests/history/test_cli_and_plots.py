"""``history`` / ``leaderboard`` / ``compare`` commands and the PNG plots, on a seeded SQLite store."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scaling_matrix.adapters.store import ResultsStore
from scaling_matrix.cli import app
from scaling_matrix.cli_history import compare_rows, leaderboard_rows
from scaling_matrix.config.loading import load_profile
from scaling_matrix.history import detect_regressions, with_scaling
from scaling_matrix.paths import results_url
from scaling_matrix.plots import data_uri, plots_markdown, render_plots
from scaling_matrix.records import RunInfo
from scaling_matrix.report import report_rows
from tests.history.conftest import load_script

runner = CliRunner()
G4 = "llama31_8b/data_parallel/lora/g4/tp1-pp1-ep1"
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def seeded(scaling_home: Path) -> ResultsStore:
    """Ten nights on 'ibex' (last one 8 % slower on g4/g8) plus one run of carol on 'dgx'."""
    seed = load_script("screenshot_artifacts")
    seed.seed_history(results_url(), nights=10, regress=0.08, labels=("nemo", "gpu", "ibex"))
    store = ResultsStore(results_url())
    dgx = load_profile("ibex").model_copy(update={"cluster": "dgx"})
    store.create_run(RunInfo("dgx-1", "workshop", dgx, "carol", None, datetime(2026, 3, 5, tzinfo=UTC)))
    for row in store.cells("night-01"):
        if row["gpus"] == 4:
            result = seed_cell(store, row)  # same cell, faster on the other cluster
            store.save_cell(result)
    return store


def seed_cell(store: ResultsStore, row: dict):
    from scaling_matrix.config.loading import load_matrix
    from scaling_matrix.matrix import expand
    from scaling_matrix.records import CellMetrics, CellResult

    pc = next(p for p in expand(load_matrix("workshop")) if p.cell.key == row["cell_id"])
    return CellResult("dgx-1", pc.cell, pc.model, "nemo", "gpu", "dgx", status="completed",
                      metrics=CellMetrics(median_step_time_s=0.3, step_time_s=0.3, wall_clock_s=200.0,
                                          peak_mem_mib=15000.0))


def test_history_command_shows_the_series_and_flags_the_last_night(seeded: ResultsStore) -> None:
    res = runner.invoke(app, ["history", "--cell", G4, "--cluster", "ibex", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert [r["run_id"] for r in out] == [f"night-{n:02d}" for n in range(1, 11)]
    assert out[-1]["regression"].startswith("+") and not any(r["regression"] for r in out[:-1])
    slug = runner.invoke(app, ["history", "--cell", "llama31-8b-data-parallel-lora-g4-tp1-pp1-ep1",
                               "--metric", "time_scaling"])
    assert slug.exit_code == 0 and "time_scaling across runs" in slug.output
    assert runner.invoke(app, ["history", "--cell", "nope"]).exit_code == 1
    assert runner.invoke(app, ["history", "--cell", G4, "--metric", "bogus"]).exit_code == 2


def test_leaderboard_puts_people_and_clusters_side_by_side(seeded: ResultsStore) -> None:
    res = runner.invoke(app, ["leaderboard", "--json"])
    assert res.exit_code == 0, res.output
    g4 = [r for r in json.loads(res.output) if r["gpus"] == 4]
    assert [(r["rank"], r["user"], r["cluster"]) for r in g4][0] == (1, "carol", "dgx")
    assert {(r["user"], r["cluster"]) for r in g4} == {("carol", "dgx"), ("alice", "ibex"), ("bob", "ibex")}
    assert g4[0]["vs_best_pct"] == 0.0 and g4[1]["vs_best_pct"] > 0
    table = runner.invoke(app, ["leaderboard", "--top", "1", "--model", "llama31_8b"])
    assert table.exit_code == 0 and "carol" in table.output and "people and clusters" in table.output


def test_compare_prints_per_cell_deltas(seeded: ResultsStore) -> None:
    res = runner.invoke(app, ["compare", "night-09", "night-10", "--json"])
    assert res.exit_code == 0, res.output
    rows = {r["cell_id"]: r for r in json.loads(res.output)}
    assert rows[G4]["median_step_time_s_delta_pct"] == pytest.approx(8, abs=6)
    assert runner.invoke(app, ["compare", "night-09", "night-10"]).exit_code == 0
    assert runner.invoke(app, ["compare", "night-09", "nope"]).exit_code == 1


def test_pure_leaderboard_and_compare_rows() -> None:
    rows = [{"model": "m", "track": "t", "workload": "w", "device": "d", "gpus": 2, "tp": 1, "pp": 1, "ep": 1,
             "user": u, "cluster": c, "run_id": r, "median_step_time_s": v}
            for u, c, r, v in (("a", "x", "1", 2.0), ("a", "x", "2", 1.5), ("b", "y", "3", 1.0))]
    board = leaderboard_rows(rows)
    assert [(r["user"], r["median_step_time_s"], r["rank"]) for r in board] == [("b", 1.0, 1), ("a", 1.5, 2)]
    assert board[1]["vs_best_pct"] == pytest.approx(50.0)
    delta = compare_rows([{"cell_id": "c", "status": "completed", "median_step_time_s": 2.0}],
                         [{"cell_id": "c", "status": "completed", "median_step_time_s": 2.2},
                          {"cell_id": "d", "status": "failed"}])
    assert delta[0]["median_step_time_s_delta_pct"] == pytest.approx(10.0)
    assert delta[1]["status_a"] == "absent" and delta[1]["median_step_time_s_delta_pct"] is None


def test_plots_are_pngs_on_disk_and_in_markdown(seeded: ResultsStore, tmp_path: Path) -> None:
    rows = report_rows(seeded.cells("night-10"))
    history = with_scaling(seeded.history(cluster="ibex"))
    alerts = detect_regressions(history, "night-10")
    plots = render_plots(rows, history, alerts, tmp_path / "report")
    assert [p.kind for p in plots] == ["speedup", "memory", "trend"]
    for p in plots:
        assert p.path is not None and p.path.read_bytes() == p.png and p.png.startswith(PNG)
        assert 5_000 < len(p.png) < 200_000
    md = plots_markdown(plots, "night-10", "workshop")
    assert md.count("](data:image/png;base64,") == 3 and data_uri(b"x") == "data:image/png;base64,eA=="
    assert "## llama31_8b — data parallel (workload=nemo, device=gpu)" in md


def test_plots_survive_empty_and_failed_groups() -> None:
    failed = [{"model": "m", "track": "t", "workload": "tiny", "device": "cpu", "gpus": 1, "tp": 1,
               "status": "failed"}]
    plots = render_plots(failed, [], [])
    assert len(plots) == 3 and all(p.png.startswith(PNG) and p.path is None for p in plots)
    assert render_plots([], [], []) == []


def test_plan_calibrations_come_from_stored_completed_cells(seeded: ResultsStore) -> None:
    from scaling_matrix.cli import _calibrations
    from scaling_matrix.feasibility import calibrations_from_rows

    every_cell = [c for r in seeded.runs(100) for c in seeded.cells(r["run_id"])]
    factors = _calibrations("gpu")
    assert factors and factors == calibrations_from_rows(every_cell, "gpu")
    assert _calibrations("cpu") == {}  # nothing measured on CPU in this store
