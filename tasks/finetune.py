"""Per-cell fine-tune task: one attempt per task run; transient failures raise to be retried."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import task_run

from scaling_matrix.adapters.local import SlotPool
from scaling_matrix.adapters.slurm import SlurmClient
from scaling_matrix.adapters.slurm_watch import JobWatcher
from scaling_matrix.adapters.store import ResultsStore
from scaling_matrix.cells import CellPlan
from scaling_matrix.execution import CANCEL_ALL, run_local_attempt
from scaling_matrix.execution_slurm import run_slurm_attempt
from scaling_matrix.outcome import is_retryable
from scaling_matrix.records import CellResult


class TransientCellFailure(Exception):
    """A cell attempt failed for a transient reason; Prefect retries the task."""

    def __init__(self, result: CellResult) -> None:
        self.result = result
        super().__init__(f"{result.cell.key}: {result.failure_class}: {result.reason}")


def retry_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Return True (retry) only when the attempt failed with a transient failure class."""
    try:
        state.result()
    except TransientCellFailure:
        return True
    except Exception:  # noqa: BLE001 - anything else is permanent
        return False
    return False


@task(name="finetune-cell", cache_policy=NO_CACHE, retry_condition_fn=retry_transient)
def finetune_cell(plan: CellPlan, slots: SlotPool, store_url: str) -> CellResult:
    """Run one attempt of ``plan`` on the local launcher and return its stored result."""
    attempt = max(1, int(task_run.run_count or 1))
    result = run_local_attempt(plan, slots, ResultsStore(store_url), attempt)
    if is_retryable(result.failure_class, result.reason):
        raise TransientCellFailure(result)
    return result


@task(name="finetune-cell-slurm", cache_policy=NO_CACHE, retry_condition_fn=retry_transient)
def finetune_cell_slurm(plan: CellPlan, client: SlurmClient, watcher: JobWatcher, store_url: str) -> CellResult:
    """Run one attempt of ``plan`` as a SLURM job (re-attaching after a crash) and return its result."""
    attempt = max(1, int(task_run.run_count or 1))
    result = run_slurm_attempt(plan, client, watcher, ResultsStore(store_url), attempt, CANCEL_ALL)
    if is_retryable(result.failure_class, result.reason):
        raise TransientCellFailure(result)
    return result
