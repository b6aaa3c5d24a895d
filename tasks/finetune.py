"""Per-cell fine-tune task (one attempt per task run; transient failures raise to be retried), and
the fan-out that starts every cell of a run at once."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture
from prefect.runtime import task_run
from prefect.task_runners import ThreadPoolTaskRunner

from scaling_matrix.cells import CellPlan
from scaling_matrix.config.models import ProfileSpec
from scaling_matrix.execution import RunCore, run_attempt, store_crash
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


def retry_delays(profile: ProfileSpec) -> list[float]:
    """Return exponential back-off delays for the profile's retries (d, 2d, 4d, ...)."""
    return [profile.retry_delay_s * 2**i for i in range(profile.retries)]


@task(name="finetune-cell", cache_policy=NO_CACHE, retry_condition_fn=retry_transient)
def finetune_cell(plan: CellPlan, core: RunCore) -> CellResult:
    """Run one attempt of ``plan`` on the run's backend and return its stored result."""
    result = run_attempt(plan, max(1, int(task_run.run_count or 1)), core)
    if is_retryable(result.failure_class, result.reason):
        raise TransientCellFailure(result)
    return result


def _outcome(plan: CellPlan, future: PrefectFuture[CellResult], core: RunCore) -> CellResult:
    future.wait()
    try:
        return future.result()
    except TransientCellFailure as exc:  # retries spent
        return exc.result
    except Exception as exc:  # noqa: BLE001 - stored, never lost
        return store_crash(core.store, plan, exc)


def run_cells(todo: list[CellPlan], core: RunCore, profile: ProfileSpec) -> list[CellResult]:
    """Start every cell of ``todo`` at once and return their results.

    No hidden cap: each cell's task submits its job as soon as it starts and then waits on the run's
    one watcher, so SLURM gets every job at once (bounded only by ``slurm.max_jobs_in_flight``) and
    local ranks are bounded by the backend's ``capacity_gpus`` slots.
    """
    if not todo:
        return []
    limit = profile.slurm.max_jobs_in_flight if profile.slurm else None
    cell_task = finetune_cell.with_options(retries=profile.retries, retry_delay_seconds=retry_delays(profile))
    with ThreadPoolTaskRunner(max_workers=min(len(todo), limit or len(todo))) as runner:
        futures = [(p, runner.submit(cell_task.with_options(task_run_name=f"finetune-{p.planned.cell.slug}"),
                                     {"plan": p, "core": core})) for p in todo]
        return [_outcome(p, f, core) for p, f in futures]
