"""Store tasks: the run's start, the cells it does not launch, its end."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from scaling_matrix.adapters.store import ResultsStore
from scaling_matrix.execution import store_not_run
from scaling_matrix.planning import RunPlan, RunSummary, Todo
from scaling_matrix.records import CellStatus
from scaling_matrix.runs import start_run


@task(name="record-run", cache_policy=NO_CACHE)
def record_run(run: RunPlan, store: ResultsStore, flow_run_id: str) -> None:
    """Store the run row, a pending row per cell (so no cell can silently vanish) and provenance."""
    start_run(run, store, flow_run_id)


@task(name="record-not-run", cache_policy=NO_CACHE)
def record_not_run(todo: Todo, store: ResultsStore) -> None:
    """Store the cells the run does not launch: failed (model not imported) or skipped (predicted OOM)."""
    for plan, reason in todo.not_imported:
        store_not_run(store, plan, CellStatus.FAILED, "launch_failed", reason)
    for plan, reason in todo.infeasible:
        store_not_run(store, plan, CellStatus.SKIPPED, "predicted_oom", reason)


@task(name="finish-run", cache_policy=NO_CACHE)
def finish_run(summary: RunSummary, store: ResultsStore, flow_run_id: str | None) -> None:
    """Store the run's derived status."""
    store.finish_run(summary.run_id, summary.status.value, flow_run_id)
