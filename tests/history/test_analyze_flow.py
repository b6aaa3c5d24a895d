"""``analyze`` publishes plots and regressions; ``scaling-matrix`` ends Failed on a regression."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from prefect.artifacts import Artifact
from prefect.settings import PREFECT_API_URL
from prefect.testing.utilities import prefect_test_harness

from flows.analyze import analyze
from scaling_matrix.adapters.store import ResultsStore
from scaling_matrix.config.loading import load_matrix, load_profile
from scaling_matrix.history import RegressionDetected
from scaling_matrix.matrix import expand
from scaling_matrix.paths import results_url, run_dir
from scaling_matrix.records import CellMetrics, CellResult, RunInfo
from tests.history.conftest import REPO, load_script

QUICK = str(REPO / "tests" / "fixtures" / "matrices" / "quick.yaml")


@pytest.fixture(scope="module", autouse=True)
def harness() -> Iterator[None]:
    """Run against a temporary Prefect API (reuse one that is already configured)."""
    if PREFECT_API_URL.value():
        yield
        return
    with prefect_test_harness(server_startup_timeout=90):
        yield


def test_analyze_publishes_plots_and_regressions_with_what_changed(scaling_home: Path) -> None:
    run_id = load_script("screenshot_artifacts").seed_history(results_url(), nights=10, regress=0.10,
                                                                labels=("nemo", "gpu", "ibex"))
    result = analyze(run_id, "workshop")
    metrics = {(a.metric, a.key.gpus) for a in result.alerts}
    assert {("median_step_time_s", 4), ("median_step_time_s", 8)} <= metrics
    assert all(g in (4, 8) for _, g in metrics)
    assert result.regressions_key == "regressions-workshop" and "plots-workshop" in result.artifacts
    regressions = Artifact.get("regressions-workshop")
    assert regressions is not None and "| **container_image** (changed) | nemo_25.07.sif |" in str(regressions.data)
    plots = Artifact.get("plots-workshop")
    assert plots is not None and str(plots.data).count("(data:image/png;base64,") == 3
    assert sorted(p.name for p in (run_dir(run_id) / "report").glob("*.png")) == [
        "llama31-8b-data-parallel-nemo-gpu-memory.png", "llama31-8b-data-parallel-nemo-gpu-speedup.png",
        "llama31-8b-data-parallel-nemo-gpu-trend.png"]
    assert [p.parent for p in result.plots] == [run_dir(run_id) / "report"] * 3


def test_analyze_without_regression_returns_no_alerts(scaling_home: Path) -> None:
    run_id = load_script("screenshot_artifacts").seed_history(results_url(), nights=10, regress=0.0,
                                                                labels=("nemo", "gpu", "ibex"))
    result = analyze(run_id, "workshop", store_url=results_url())
    assert result.alerts == [] and result.regressions_key == ""
    assert len(result.rows) == 4 and len(result.plots) == 3


def _seed_fast_history(nights: int) -> None:
    """Store ``nights`` earlier runs of the quick matrix that were impossibly fast and lean."""
    store, rng = ResultsStore(results_url()), random.Random(5)
    profile = load_profile("local")
    for n in range(nights):
        rid = f"past-{n}"
        store.create_run(RunInfo(rid, "quick", profile, "alice", "old", datetime.now(UTC) - timedelta(days=nights - n)))
        for pc in expand(load_matrix(QUICK)):
            step = 1e-3 * rng.lognormvariate(0, 0.02) / pc.cell.gpus
            store.save_cell(CellResult(rid, pc.cell, pc.model, "tiny", "cpu", "local", status="completed",
                                       metrics=CellMetrics(median_step_time_s=step, step_time_s=step,
                                                           wall_clock_s=0.5 / pc.cell.gpus, peak_mem_mib=1.0)))


@pytest.mark.slow
def test_nightly_run_with_a_regression_ends_failed_with_typed_error(scaling_home: Path, tmp_path: Path) -> None:
    from flows.matrix import scaling_matrix

    _seed_fast_history(8)
    profile = tmp_path / "profile.yaml"
    profile.write_text(yaml.safe_dump({"name": "test-local", "launcher": "local", "workload": "tiny",
                                       "device": "cpu", "capacity_gpus": 2, "retries": 0}))
    state = scaling_matrix(matrix=QUICK, profile=str(profile), run_id="tonight", return_state=True)
    assert state.is_failed(), state.message
    error = state.result(raise_on_failure=False)
    assert isinstance(error, RegressionDetected) and error.run_id == "tonight"
    assert {a.metric for a in error.alerts} >= {"median_step_time_s", "peak_mem_mib"}
    store = ResultsStore(results_url())
    assert {c["status"] for c in store.cells("tonight")} == {"completed"}
    assert store.run("tonight")["status"] == "completed"  # the cells ran; the regression is the failure
    assert Artifact.get("regressions-quick") is not None
