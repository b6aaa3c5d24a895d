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
from scaling_matrix.execution_slurm import comment_for
from scaling_matrix.paths import run_dir

#: Final run statuses; ``running`` is the only other value a run row holds.
RUN_STATUSES = ("completed", "failed", "cancelled", "crashed")
#: Cell statuses that mean "this cell will not produce more results".
FINAL_CELL_STATUSES = ("completed", "failed", "cancelled", "skipped")


def derive_run_status(cells: Iterable[Mapping[str, Any]], cancelled: bool = False) -> str:
    """Return a finished run's status from its cells: cancelled, failed or completed.

    A run asked to stop is ``cancelled``; a cell stored cancelled makes the run cancelled too; a
    failed cell, or one left pending/running, makes it ``failed``; otherwise ``completed``.
    """
    statuses = {c["status"] for c in cells}
    if cancelled or "cancelled" in statuses:
        return "cancelled"
    if statuses - {"completed", "skipped"}:
        return "failed"
    return "completed"


def _ledger_job_ids(store: ResultsStore, run_id: str, client: SlurmClient) -> list[str]:
    """Return the job ids of ``run_id`` that may still run: submitted ones, and ``submitting`` ones
    the scheduler knows by their ``--comment`` (the orchestrator died before sbatch answered)."""
    ids = []
    for a in store.attempts(run_id):
        if a["status"] == "submitted" and a["job_id"]:
            ids.append(str(a["job_id"]))
        elif a["status"] == "submitting":
            found = client.find_by_comment(comment_for(run_id, a["cell_id"], a["attempt"]))
            if found:
                store.record_attempt(run_id, a["cell_id"], a["attempt"], status="submitted", job_id=found)
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
    for a in store.attempts(run_id):
        if a["job_id"] and str(a["job_id"]) in ids and a["status"] == "submitted":
            store.record_attempt(run_id, a["cell_id"], a["attempt"], status="cancelled",
                                 failure_class="cancelled", reason=reason)
    return ids


def cancel_run(store: ResultsStore, run_id: str, reason: str, status: str = "cancelled",
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


__all__ = ["FINAL_CELL_STATUSES", "RUN_STATUSES", "cancel_run", "derive_run_status",
           "stop_on_signals", "scancel_run_jobs"]
