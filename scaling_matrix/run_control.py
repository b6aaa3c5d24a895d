"""Ending a run truthfully: its derived status, and cancellation that reaches every job. No Prefect.

Every entry point that stops a run (a flow-run cancel seen by the flow, a runner's or worker's
cancellation hook, Ctrl-C/SIGTERM of ``scaling-matrix run``, ``scaling-matrix cancel RUN_ID`` after
the orchestrator was killed) ends in :func:`cancel_run`: ``scancel`` of every job the ledger knows,
a kill of every local rank group, unfinished cells stored ``cancelled`` and the run's final status.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from scaling_matrix.adapters.local import kill_recorded_groups
from scaling_matrix.adapters.runner import SubprocessRunner
from scaling_matrix.adapters.slurm import SlurmClient
from scaling_matrix.adapters.store import ResultsStore
from scaling_matrix.cells import comment_for
from scaling_matrix.execution import SUBMITTED, SUBMITTING
from scaling_matrix.paths import run_dir, scaling_home
from scaling_matrix.planning import run_status
from scaling_matrix.records import CellStatus, RunStatus

#: Final run statuses; ``running`` is the only other value a run row holds.
RUN_STATUSES = tuple(s.value for s in RunStatus if s is not RunStatus.RUNNING)
#: Cell statuses that mean "this cell will not produce more results".
FINAL_CELL_STATUSES = tuple(s.value for s in CellStatus if s.final)


def derive_run_status(cells: Iterable[Mapping[str, Any]], cancelled: bool = False) -> str:
    """Return a finished run's status from its cell rows: cancelled, failed or completed
    (:func:`scaling_matrix.planning.run_status` over their statuses)."""
    return run_status((c["status"] for c in cells), cancelled).value


def _ledger_job_ids(store: ResultsStore, run_id: str, client: SlurmClient) -> list[str]:
    """Return the job ids of ``run_id`` that may still run: submitted ones, and ``submitting`` ones
    the scheduler knows by their ``--comment`` (the orchestrator died before sbatch answered)."""
    ids = []
    for a in store.attempt_rows(run_id):
        if a.status == SUBMITTED and a.job_id:
            ids.append(a.job_id)
        elif a.status == SUBMITTING:
            found = client.find_by_comment(comment_for(run_id, a.cell_id, a.attempt))
            if found:
                store.record_attempt(run_id, a.cell_id, a.attempt, status=SUBMITTED, job_id=found)
                ids.append(found)
    return sorted(set(ids))


def scancel_run_jobs(store: ResultsStore, run_id: str, client: SlurmClient | None = None,
                     reason: str = "cancelled") -> list[str]:
    """``scancel`` every job of ``run_id`` the ledger says may still run; mark those attempts
    cancelled and return their ids."""
    client = client or SlurmClient(SubprocessRunner())
    ids = _ledger_job_ids(store, run_id, client)
    if not ids:
        return []
    client.cancel(ids)
    for a in store.attempt_rows(run_id):
        if a.job_id and a.job_id in ids and a.status == SUBMITTED:
            store.record_attempt(run_id, a.cell_id, a.attempt, status=CellStatus.CANCELLED.value,
                                 failure_class="cancelled", reason=reason)
    return ids


def cancel_run(store: ResultsStore, run_id: str, reason: str, status: str = RunStatus.CANCELLED.value,
               client: SlurmClient | None = None, scheduler: bool = True) -> list[str]:
    """Stop everything of ``run_id`` and store the truth; return the SLURM job ids cancelled.

    ``scancel`` every ledger job (when ``scheduler``), SIGKILL every recorded local rank group,
    store every cell not yet final as ``cancelled`` with ``reason``, and finish the run with
    ``status`` (``cancelled`` or ``crashed``) unless it already ended.
    """
    ids = scancel_run_jobs(store, run_id, client, reason) if scheduler else []
    kill_recorded_groups(run_dir(run_id))
    store.cancel_unfinished_cells(run_id, reason)
    run = store.run(run_id)
    if run is not None and run["status"] not in RUN_STATUSES:
        store.finish_run(run_id, status)
    return ids


def stop_runs_of_flow_run(store: ResultsStore, flow_run_id: str, status: str, reason: str) -> list[str]:
    """Cancel every run whose folder records ``flow_run_id`` (a cancellation or crash hook, which runs
    in the runner's or worker's process); return their ids."""
    stopped = []
    for marker in (scaling_home() / "runs").glob("*/flow_run_id"):
        if marker.read_text().strip() == flow_run_id:
            cancel_run(store, marker.parent.name, reason, status)
            stopped.append(marker.parent.name)
    return stopped


def stop_cancelled_run(store: ResultsStore, run_id: str, flow_run_id: str) -> str:
    """Stop what is left of a run asked to stop, store it cancelled; return the one-line account."""
    jobs = cancel_run(store, run_id, "cancelled before the cell finished")
    store.finish_run(run_id, RunStatus.CANCELLED.value, flow_run_id)
    cells = store.cell_states(run_id)
    done = sum(c.status is CellStatus.COMPLETED for c in cells)
    return (f"run {run_id} cancelled: {done} of {len(cells)} cells completed"
            + (f"; scancelled {', '.join(jobs)}" if jobs else ""))


__all__ = ["FINAL_CELL_STATUSES", "RUN_STATUSES", "cancel_run", "derive_run_status", "scancel_run_jobs",
           "stop_cancelled_run", "stop_runs_of_flow_run"]
