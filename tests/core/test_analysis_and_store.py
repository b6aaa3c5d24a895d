"""Scaling math, report rendering and the SQLite store (real SQLite in tmp_path)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from scaling_matrix.adapters.store import ResultsStore
from scaling_matrix.analysis import hhmmss, scaling_tables, workshop_columns
from scaling_matrix.config.loading import load_matrix, load_profile
from scaling_matrix.matrix import expand
from scaling_matrix.records import CellMetrics, CellResult, RunInfo
from scaling_matrix.report import REPORT_COLUMNS, render_csv, render_json, render_markdown, report_rows

SMOKE = expand(load_matrix("smoke"))
PROFILE = load_profile("local")


def _result(run_id: str, idx: int, status: str, wall: float | None, peak: float | None) -> CellResult:
    pc = SMOKE[idx]
    m = CellMetrics(steps_logged=40, reached_last_step=status == "completed", first_loss=5.0,
                    final_loss=2.0, step_time_s=0.2, median_step_time_s=0.21, wall_clock_s=wall,
                    peak_mem_mib=peak, avg_mem_mib=peak and peak / 2, mode_mem_mib=peak)
    return CellResult(run_id, pc.cell, pc.model, "tiny", "cpu", "local", status=status,
                      failure_class="completed" if status == "completed" else "oom", metrics=m)


@pytest.fixture
def store(tmp_path: Path) -> ResultsStore:
    s = ResultsStore(f"sqlite:///{tmp_path / 'sub' / 'results.db'}")
    s.create_run(RunInfo("r1", "smoke", PROFILE, "alice", "abc123", datetime.now(UTC)))
    return s


def test_store_roundtrip_and_upsert(store: ResultsStore) -> None:
    store.save_cell(_result("r1", 0, "running", None, None))
    store.save_cell(_result("r1", 0, "completed", 100.0, 800.0))
    store.save_cell(_result("r1", 1, "failed", None, None))
    rows = store.cells("r1")
    assert [r["status"] for r in rows] == ["completed", "failed"]
    assert rows[0]["wall_clock_s"] == 100.0 and rows[0]["workload"] == "tiny" and rows[0]["device"] == "cpu"
    assert rows[0]["config_json"]["gpus"] == 1
    assert store.last_run_id() == "r1" and store.run("r1")["user"] == "alice"


def test_scaling_vs_smallest_gpu_count(store: ResultsStore) -> None:
    store.save_cell(_result("r1", 0, "completed", 100.0, 800.0))
    store.save_cell(_result("r1", 1, "completed", 60.0, 500.0))
    rows = report_rows(store.cells("r1"))
    by_gpus = {r["gpus"]: r for r in rows}
    assert by_gpus[1]["time_scaling"] == 1.0 and by_gpus[1]["mem_scaling"] == 1.0
    assert by_gpus[2]["time_scaling"] == pytest.approx(100 / 60)
    assert by_gpus[2]["mem_scaling"] == pytest.approx(800 / 500)
    assert by_gpus[2]["batch_per_gpu"] == 4.0 and by_gpus[1]["batch_per_gpu"] == 8.0
    # same median step time on 2 GPUs as on 1: throughput speedup 1.0, parallel efficiency 0.5
    assert by_gpus[2]["speedup"] == pytest.approx(1.0) and by_gpus[2]["parallel_efficiency"] == pytest.approx(0.5)
    assert set(REPORT_COLUMNS) == set(rows[0])


def test_failed_cells_stay_in_report_without_scaling(store: ResultsStore) -> None:
    store.save_cell(_result("r1", 0, "failed", None, None))
    store.save_cell(_result("r1", 1, "completed", 60.0, 500.0))
    rows = {r["gpus"]: r for r in report_rows(store.cells("r1"))}
    assert rows[1]["status"] == "failed" and rows[1]["time_scaling"] is None
    assert rows[2]["time_scaling"] == 1.0  # baseline = smallest *completed* count
    md = render_markdown(store.cells("r1"), "r1")
    assert "did not complete" in md and "workload=tiny" in md
    (table,) = scaling_tables(store.cells("r1")).values()
    assert list(table["GPUs"]) == [2]  # the failed cell's numbers never sit among measurements
    assert "Time scaling vs 2 GPU" in table.columns  # the real baseline, as the workshop writes it


def test_cancelled_partial_cell_is_marked_not_scaled(store: ResultsStore) -> None:
    store.save_cell(_result("r1", 0, "completed", 100.0, 800.0))
    partial = _result("r1", 1, "cancelled", 30.0, 500.0)
    partial.metrics.last_step, partial.metrics.max_steps, partial.metrics.reached_last_step = 7, 40, False
    store.save_cell(partial)
    rows = {r["gpus"]: r for r in report_rows(store.cells("r1"))}
    assert rows[2]["status"] == "cancelled" and rows[2]["time_scaling"] is None
    (table,) = scaling_tables(store.cells("r1")).values()
    assert list(table["GPUs"]) == [1]
    md = render_markdown(store.cells("r1"), "r1")
    assert "| tiny_llama/data_parallel/lora/g2/tp1-pp1-ep1 | cancelled | oom | partial: step 7 of 40 |" in md


def test_workshop_table_columns_and_formats(store: ResultsStore) -> None:
    store.save_cell(_result("r1", 0, "completed", 595.0, 16273.0))
    tables = scaling_tables(store.cells("r1"))
    (key, table), = tables.items()
    assert key == ("tiny_llama", "data_parallel", "tiny", "cpu")
    assert list(table.columns)[:10] == workshop_columns(1)  # the workshop's columns exactly, then extras
    assert list(table.columns)[8:10] == ["Time scaling vs 1 GPU", "Peak memory scaling vs 1 GPU"]
    assert list(table.columns)[10:] == ["Speedup vs 1 GPU (throughput)", "Parallel efficiency", "Tokens/s/GPU",
                                       "Model TFLOPs/GPU", "MFU"]
    assert table.iloc[0]["Total job time (HH:MM:SS)"] == "00:09:55"
    rows = report_rows(store.cells("r1"))
    assert json.loads(render_json(rows))[0]["peak_mem_mib"] == 16273.0
    assert render_csv(rows).splitlines()[0].split(",") == REPORT_COLUMNS
    assert hhmmss(3725) == "01:02:05" and hhmmss(None) is None
