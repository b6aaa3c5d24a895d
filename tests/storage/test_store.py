"""The results store's behaviour, identical on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import make_url

from scaling_matrix.adapters.store import ResultsStore
from scaling_matrix.config.loading import load_matrix, load_profile
from scaling_matrix.errors import StoreError
from scaling_matrix.matrix import expand
from scaling_matrix.records import CellMetrics, CellResult, RunInfo

SMOKE = expand(load_matrix("smoke"))
PROFILE = load_profile("local")
IBEX = load_profile("ibex")
T0 = datetime(2026, 1, 1, 2, 0, tzinfo=UTC)


def _run(store: ResultsStore, run_id: str, day: int = 0, user: str = "alice", profile=PROFILE) -> None:
    store.create_run(RunInfo(run_id, "smoke", profile, user, f"rev{day}", T0 + timedelta(days=day)))


def _cell(run_id: str, idx: int, status: str = "completed", step: float | None = 0.2,
          cluster: str = "local", **metrics: float) -> CellResult:
    pc = SMOKE[idx]
    m = CellMetrics(steps_logged=40, reached_last_step=status == "completed", first_loss=5.0, final_loss=2.0,
                    step_time_s=step, median_step_time_s=step, wall_clock_s=100.0, peak_mem_mib=800.0)
    for key, value in metrics.items():
        setattr(m, key, value)
    return CellResult(run_id, pc.cell, pc.model, "tiny", "cpu", cluster, status=status,
                      failure_class="completed" if status == "completed" else "oom", metrics=m)


@pytest.fixture
def store(db_url: str) -> ResultsStore:
    s = ResultsStore(db_url)
    _run(s, "r1")
    return s


def test_roundtrip_upsert_and_run_labels(store: ResultsStore) -> None:
    store.save_cell(_cell("r1", 0, "running", None))
    store.save_cell(_cell("r1", 0, "completed", 0.25))
    store.save_cell(_cell("r1", 1, "failed", None))
    rows = store.cells("r1")
    assert [r["status"] for r in rows] == ["completed", "failed"]
    assert rows[0]["median_step_time_s"] == 0.25 and rows[0]["config_json"]["gpus"] == 1
    run = store.run("r1")
    assert run["user"] == "alice" and run["cluster"] == "local" and run["git_rev"] == "rev0"
    assert run["created_at"] == T0 and run["created_at"].tzinfo is not None
    assert store.last_run_id() == "r1" and store.run("nope") is None


def test_every_cell_metric_survives_including_new_ones_and_nan(store: ResultsStore) -> None:
    result = _cell("r1", 0, first_loss=float("nan"))
    for f in dataclasses.fields(CellMetrics):  # every field, also ones added after the columns
        if getattr(result.metrics, f.name) is None and f.type in ("float | None", "float"):
            setattr(result.metrics, f.name, 1.5)
    store.save_cell(result)
    row = store.cells("r1")[0]
    for key, value in dataclasses.asdict(result.metrics).items():
        expected = None if isinstance(value, float) and value != value else value
        assert row[key] == expected, key


def test_attempt_ledger(store: ResultsStore) -> None:
    key = SMOKE[0].cell.key
    store.record_attempt("r1", key, 1, status="running", job_id="12")
    store.record_attempt("r1", key, 1, status="failed", failure_class="node_fail")
    store.record_attempt("r1", key, 2, status="completed")
    atts = store.attempts("r1", key)
    assert [(a["attempt"], a["status"], a["job_id"]) for a in atts] == [(1, "failed", "12"), (2, "completed", None)]
    assert atts[0]["started_at"].tzinfo is not None
    assert store.attempts("r1", "other") == []


def test_runs_newest_first_and_finish(store: ResultsStore) -> None:
    _run(store, "r0", day=-1)
    _run(store, "r2", day=1, user="bob")
    _run(store, "r1", day=5, user="mallory")  # resume keeps the original row
    assert [r["run_id"] for r in store.runs()] == ["r2", "r1", "r0"]
    assert store.run("r1")["user"] == "alice"
    store.finish_run("r2", "completed", "flow-1")
    assert store.run("r2")["status"] == "completed" and store.run("r2")["flow_run_id"] == "flow-1"


def test_provenance_from_profile_and_merge(db_url: str) -> None:
    store = ResultsStore(db_url)
    _run(store, "gpu", profile=IBEX)
    prov = store.run("gpu")["provenance"]
    assert prov["container_image"].endswith(".sif") and prov["cluster"] == "ibex" and prov["git_rev"] == "rev0"
    store.set_provenance("gpu", {"nemo_version": "25.07", "container_digest": None})
    store.set_provenance("gpu", {"driver_version": "550.54.15"})
    prov = store.run("gpu")["provenance"]
    assert prov["nemo_version"] == "25.07" and prov["driver_version"] == "550.54.15"
    assert "container_digest" not in prov
    with pytest.raises(StoreError):
        store.set_provenance("missing", {"x": 1})


def test_history_joins_runs_filters_and_orders(store: ResultsStore) -> None:
    for day, rid in enumerate(["r1", "r2", "r3"]):
        if rid != "r1":
            _run(store, rid, day=day, user="bob")
        store.save_cell(_cell(rid, 0, step=0.2 + day / 100))
        store.save_cell(_cell(rid, 1, status="failed"))
    _run(store, "other", day=1)
    store.save_cell(_cell("other", 0, cluster="ibex"))
    store.set_provenance("r2", {"nodelist": ["n1", "n2"]}, cell_id=SMOKE[0].cell.key)
    key = SMOKE[0].cell.key
    rows = store.history([key], cluster="local")
    assert [r["run_id"] for r in rows] == ["r1", "r2", "r3"]  # oldest first, failed cells left out
    assert rows[1]["provenance"]["nodelist"] == ["n1", "n2"] and rows[1]["provenance"]["user"] == "bob"
    assert rows[0]["created_at"] == T0 and rows[2]["median_step_time_s"] == pytest.approx(0.22)
    assert [r["run_id"] for r in store.history([key], cluster="local", until=T0 + timedelta(days=1))] == ["r1", "r2"]
    assert [r["run_id"] for r in store.history([key], cluster="local", limit=2)] == ["r2", "r3"]
    assert {r["cluster"] for r in store.history()} == {"local", "ibex"}


def test_repr_hides_the_password_and_close_reopens(db_url: str) -> None:
    store = ResultsStore(db_url)
    password = make_url(db_url).password
    if password:
        assert str(password) not in repr(store) and "***" in repr(store)
    store.close()
    assert ResultsStore(db_url).runs() == []


def test_restarts_are_stored_in_the_cell_row_and_shown_in_the_report(store: ResultsStore) -> None:
    from scaling_matrix.analysis import cell_metrics
    from scaling_matrix.parsing.progress import parse_file
    from scaling_matrix.report import render_markdown, report_rows
    from tests.parsing.conftest import FIX

    parsed = parse_file(FIX / "nemo_restart.log")  # one torchrun restart after step 4, resumed at 3
    result = dataclasses.replace(_cell("r1", 0), metrics=cell_metrics(parsed, {}, 60.0, gpus=1))
    store.save_cell(result)
    row = store.cells("r1")[0]
    assert (row["restarts"], row["restart_time_lost_s"]) == (1, 4.0)
    assert row["restart_events"][0]["resumed_at"] == 3 and row["restart_events"][0]["after_step"] == 4
    assert report_rows([row])[0]["restarts"] == 1
    md = render_markdown([row])
    assert "## In-job restarts" in md and "4→3" in md
    assert "In-job restarts" not in render_markdown([store.cells("r1")[0] | {"restarts": 0}])  # negative control
