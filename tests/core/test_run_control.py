"""Run status and the stop path, without a scheduler: derived status, hooks, signals, `cancel`, `cells`.

The real-SLURM and real-server versions of every cancel path are in tests/server/test_cancel_slurm.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from prefect.states import Cancelled, Crashed
from typer.testing import CliRunner

from scaling_matrix.adapters.store import ResultsStore
from scaling_matrix.cli import app
from scaling_matrix.config.loading import load_matrix, load_profile
from scaling_matrix.matrix import expand
from scaling_matrix.paths import results_url, run_dir
from scaling_matrix.records import CellMetrics, CellResult, RunInfo
from scaling_matrix.run_control import derive_run_status
from scaling_matrix.stop import stop_on_signals

runner = CliRunner()


def _run_with_cells(run_id: str, statuses: tuple[str, ...]) -> ResultsStore:
    store = ResultsStore(results_url())
    store.create_run(RunInfo(run_id, "smoke", load_profile("local"), "bob", None, datetime.now(UTC)))
    for pc, status in zip(expand(load_matrix("smoke")), statuses, strict=True):
        store.save_cell(CellResult(run_id, pc.cell, pc.model, "tiny", "cpu", "local", status=status,
                                   metrics=CellMetrics(wall_clock_s=10.0, median_step_time_s=0.2)))
    return store


@pytest.mark.parametrize(("cells", "cancelled", "expected"), [
    (("completed", "skipped"), False, "completed"),
    (("completed", "failed"), False, "failed"),
    (("completed", "running"), False, "failed"),  # a cell left behind is not success
    (("completed", "cancelled"), False, "cancelled"),
    (("completed", "completed"), True, "cancelled"),  # asked to stop: cancelled, whatever finished
])
def test_run_status_is_derived_from_cells(cells: tuple[str, ...], cancelled: bool, expected: str) -> None:
    assert derive_run_status([{"status": s} for s in cells], cancelled) == expected


@pytest.mark.parametrize(("hook", "state", "status"), [("on_cancelled", Cancelled(), "cancelled"),
                                                        ("on_crashed", Crashed(message="SIGKILL"), "crashed")])
def test_hooks_take_prefects_keywords_and_store_the_end(scaling_home: Path, hook: str, state: object,
                                                        status: str) -> None:
    import flows.matrix as fm

    store = _run_with_cells("hooked", ("completed", "running"))
    run_dir("hooked").mkdir(parents=True)
    (run_dir("hooked") / "flow_run_id").write_text("fr-1")
    getattr(fm, hook)(flow=fm.scaling_matrix, flow_run=SimpleNamespace(id="fr-1"), state=state)  # runner's call
    assert store.run("hooked")["status"] == status
    assert [c["status"] for c in store.cells("hooked")] == ["completed", "cancelled"]


def test_first_signal_stops_gracefully_second_runs_previous_handler() -> None:
    stop, seen = threading.Event(), []
    record = lambda sig, frame: seen.append(sig)  # noqa: E731
    old = {s: signal.signal(s, record) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        with stop_on_signals(stop):
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C: no KeyboardInterrupt, a stop request
            assert stop.is_set() and seen == []
            os.kill(os.getpid(), signal.SIGTERM)  # again: the previous handler runs
            assert seen == [signal.SIGTERM]
        assert signal.getsignal(signal.SIGINT) is record  # restored after the block
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def test_cancel_command_stores_cancelled_and_names_bad_ids(scaling_home: Path) -> None:
    store = _run_with_cells("stuck", ("completed", "running"))  # its orchestrator was killed
    res = runner.invoke(app, ["cancel", "stuck"])
    assert res.exit_code == 0, res.output
    assert "run stuck cancelled" in res.output and "1 cell(s) stored cancelled" in res.output
    assert store.run("stuck")["status"] == "cancelled"
    assert [c["status"] for c in store.cells("stuck")] == ["completed", "cancelled"]
    res = runner.invoke(app, ["cancel", "nope"])
    assert res.exit_code == 1 and "scaling-matrix runs" in res.output


def test_cells_lists_ids_that_history_accepts(scaling_home: Path) -> None:
    _run_with_cells("r1", ("completed", "completed"))
    res = runner.invoke(app, ["cells"])
    assert res.exit_code == 0, res.output
    ids = [line.split()[1] for line in res.output.splitlines()[1:]]
    assert ids == [pc.cell.key for pc in expand(load_matrix("smoke"))]
    res = runner.invoke(app, ["history", "--cell", ids[1]])
    assert res.exit_code == 0 and "r1" in res.output, res.output


def test_report_table_is_readable_at_80_columns(scaling_home: Path) -> None:
    _run_with_cells("r2", ("completed", "cancelled"))
    env = {**os.environ, "COLUMNS": "80"}
    res = subprocess.run([sys.executable, "-m", "scaling_matrix.cli", "report", "--last"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert max(map(len, lines)) <= 80, res.stdout
    for label in ("Time scaling vs 1 GPU", "Peak memory scaling vs 1 GPU", "Total job time (HH:MM:SS)"):
        assert any(label in line for line in lines), (label, res.stdout)  # whole, not cut or wrapped
    assert any(line.startswith("cancelled: tiny_llama/data_parallel/lora/g2") for line in lines), res.stdout


def test_sigterm_after_a_cancel_seen_elsewhere_or_twice_stays_graceful() -> None:
    """A runner's SIGTERM may arrive after the flow saw the cancel through the API, or twice (duplicate
    cancel events): the run must still end through its graceful path, not crash."""
    from scaling_matrix.stop import CancelToken

    stop, seen = CancelToken(), []
    record = lambda sig, frame: seen.append(sig)  # noqa: E731
    old = signal.signal(signal.SIGTERM, record)
    try:
        with stop_on_signals(stop):
            stop.set()  # the API watch saw CANCELLING first
            os.kill(os.getpid(), signal.SIGTERM)
            os.kill(os.getpid(), signal.SIGTERM)
            assert seen == []  # absorbed: graceful
            stop.force()  # the CLI's second Ctrl-C
            os.kill(os.getpid(), signal.SIGTERM)
            assert seen == [signal.SIGTERM]  # the hard way
    finally:
        signal.signal(signal.SIGTERM, old)
