"""Prefect state hooks of the ``scaling-matrix`` flow: they run in the runner's or worker's process
(Prefect calls them with the keywords flow, flow_run, state) and stop the run through the store and
SLURM (``run_control``), independently of the flow process."""

from __future__ import annotations

from typing import Any

from blocks.results_db import resolve_results_url
from scaling_matrix.adapters.store import ResultsStore
from scaling_matrix.records import RunStatus
from scaling_matrix.run_control import stop_runs_of_flow_run


def on_cancelled(flow: Any, flow_run: Any, state: Any) -> None:
    """``on_cancellation`` hook: scancel the run's jobs, store it and its open cells cancelled."""
    stop_runs_of_flow_run(ResultsStore(resolve_results_url()), str(flow_run.id), RunStatus.CANCELLED.value,
                          f"flow run cancelled ({state.name})")


def on_crashed(flow: Any, flow_run: Any, state: Any) -> None:
    """``on_crashed`` hook: the orchestrator died; stop its jobs and store the run as crashed."""
    stop_runs_of_flow_run(ResultsStore(resolve_results_url()), str(flow_run.id), RunStatus.CRASHED.value,
                          f"flow run crashed: {state.message or state.name}"[:500])
