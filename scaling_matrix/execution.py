"""The execution core: one attempt of a cell on any backend, and what the attempts of a run share.

``run_attempt`` is the one attempt path for local and SLURM runs: job ledger -> submit (or
re-attach) -> wait on the run's one watcher -> collect -> judge (``cells.evaluate``) -> store.
I/O orchestration without Prefect: the tasks in ``tasks/`` are thin wrappers over it.

Crash safety (SLURM): the attempt is written to the ledger (``attempts`` table) before ``sbatch``
and updated with the job id right after it. A resumed run re-attaches to a ledger job that is
still queued/running or already finished instead of submitting again; an attempt the ledger left
``submitting`` (killed between the two writes) is found by the job's ``--comment``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime

from scaling_matrix.adapters.outputs import read_log_text, read_memory_dir
from scaling_matrix.adapters.runner import SubprocessRunner
from scaling_matrix.adapters.slurm import SlurmClient
from scaling_matrix.adapters.store import ResultsStore
from scaling_matrix.backends.base import Backend, Handle, JobSpec, RunEnd
from scaling_matrix.backends.local import LocalBackend
from scaling_matrix.backends.slurm import SlurmBackend, passthrough_env
from scaling_matrix.backends.watcher import JobWatcher
from scaling_matrix.cells import CellPlan, evaluate, initial_result, job_spec
from scaling_matrix.config.models import ProfileSpec
from scaling_matrix.errors import ScalingError
from scaling_matrix.parsing.memory import MemoryLog
from scaling_matrix.records import CellResult, CellStatus
from scaling_matrix.stop import CancelToken

#: Ledger statuses: written before sbatch, after its answer, and for local ranks while they run.
SUBMITTING, SUBMITTED, RUNNING = "submitting", "submitted", "running"


class RunCore:
    """What every attempt and import of one run shares: the backend, ONE watcher, the store, the token."""

    def __init__(self, backend: Backend, watcher: JobWatcher, store: ResultsStore | None, cancel: CancelToken) -> None:
        self.backend, self.watcher, self.store, self.cancel = backend, watcher, store, cancel

    def wait(self, handle: Handle) -> RunEnd:
        """Return how ``handle`` ended; a cancel request (or, where the backend does not enforce it,
        the job's time limit) stops the job first."""
        limit = None if self.backend.enforces_timeout else handle.spec.timeout_s
        state = self.watcher.wait(handle.id, cancel=self.cancel, timeout_s=limit)
        if state is None:
            self.backend.cancel([handle])
        return self.backend.collect(handle, cancelled=state is None)


def make_backend(profile: ProfileSpec) -> Backend:
    """Return the backend ``profile`` runs on (SLURM polls at the profile's interval)."""
    if profile.launcher == "slurm" and profile.slurm is not None:
        return SlurmBackend(SlurmClient(SubprocessRunner()), profile.slurm.poll_interval_s,
                            passthrough_env(profile.container.env_passthrough))
    return LocalBackend(profile.capacity_gpus)


@contextmanager
def open_core(profile: ProfileSpec, store: ResultsStore | None, cancel: CancelToken,
              backend: Backend | None = None) -> Iterator[RunCore]:
    """Yield the run's core; its watcher thread polls all jobs while the block runs (``store``: None
    for imports alone, which store nothing)."""
    backend = backend or make_backend(profile)
    with JobWatcher(backend.poll, backend.poll_interval_s) as watcher:
        yield RunCore(backend, watcher, store, cancel)


def ledger_job(store: ResultsStore, plan: CellPlan, attempt: int, backend: Backend | None = None) -> str | None:
    """Return the job id the ledger holds for this attempt if it may still be collected.

    An attempt left ``submitting`` (the orchestrator died between the ledger write and sbatch's
    answer) is looked up by its comment through ``backend``; a job found is recorded and returned.
    """
    key = plan.planned.cell.key
    row = next((r for r in store.attempt_rows(plan.run_id, key) if r.attempt == attempt), None)
    if row is not None and row.job_id and row.status == SUBMITTED:
        return row.job_id
    if row is None or row.status != SUBMITTING or backend is None:
        return None
    job_id = backend.find(job_spec(plan, attempt).comment)
    if job_id:
        store.record_attempt(plan.run_id, key, attempt, status=SUBMITTED, job_id=job_id)
    return job_id


def _submit(core: RunCore, plan: CellPlan, attempt: int, spec: JobSpec) -> Handle:
    """Return the handle of a fresh submission, recorded in the ledger around it."""
    key, store = plan.planned.cell.key, core.store
    store.record_attempt(plan.run_id, key, attempt, status=SUBMITTING if core.backend.reattaches else RUNNING)
    handle = core.backend.submit(spec)
    if handle.job_id:
        store.record_attempt(plan.run_id, key, attempt, status=SUBMITTED, job_id=handle.job_id)
    return handle


def _handle(core: RunCore, plan: CellPlan, attempt: int, spec: JobSpec) -> Handle:
    """Return the attempt's job: the ledger's (re-attached) or a new submission."""
    known = ledger_job(core.store, plan, attempt, core.backend) if core.backend.reattaches else None
    return core.backend.attach(known, spec) if known else _submit(core, plan, attempt, spec)


def run_attempt(plan: CellPlan, attempt: int, core: RunCore) -> CellResult:
    """Return the stored result of one attempt of ``plan`` on the run's backend (every attempt is recorded)."""
    spec = job_spec(plan, attempt)
    if core.cancel.is_set():  # a retry or a late start after the run was asked to stop: submit nothing
        return _never_started(core, plan, attempt, spec, "the run was cancelled before this attempt started")
    try:
        handle = _handle(core, plan, attempt, spec)
    except ScalingError as exc:  # sbatch refused it: a result, never lost (transient words are retried)
        return _never_started(core, plan, attempt, spec, str(exc))
    core.store.save_cell(replace(initial_result(plan, CellStatus.RUNNING), attempts=attempt, job_id=handle.job_id,
                                 started_at=datetime.now(UTC)))
    end = core.wait(handle)
    result = evaluate(plan, attempt, end, read_log_text(*end.log_paths), read_memory_dir(end.memory_dir))
    return store_result(core.store, plan, attempt, replace(result, job_id=handle.job_id), end)


def _never_started(core: RunCore, plan: CellPlan, attempt: int, spec: JobSpec, reason: str) -> CellResult:
    end = RunEnd((), spec.workdir / "memory", None, cancelled=core.cancel.is_set(), error=reason)
    return store_result(core.store, plan, attempt, evaluate(plan, attempt, end, "", MemoryLog()))


def store_result(store: ResultsStore, plan: CellPlan, attempt: int, result: CellResult,
                 end: RunEnd | None = None) -> CellResult:
    """Store ``result`` in the cell row and the ledger (plus the scheduler's facts); return it."""
    key = plan.planned.cell.key
    store.record_attempt(plan.run_id, key, attempt, status=result.status.value, job_id=result.job_id,
                         exit_code=result.exit_code, failure_class=result.failure_class, reason=result.reason,
                         finished_at=datetime.now(UTC))
    store.save_cell(result)
    status = end.scheduler if end is not None else None
    if status is not None:
        store.set_provenance(plan.run_id, {"job_id": status.job_id, "nodelist": status.node_list,
                                           "partition": status.partition, "queue_wait_s": status.queue_wait_s,
                                           "elapsed_s": status.elapsed_s, "slurm_state": status.raw_state},
                             cell_id=key)
    return result


def store_crash(store: ResultsStore, plan: CellPlan, exc: BaseException) -> CellResult:
    """Store a cell whose attempt raised unexpectedly as failed (class ``unknown``); return the row."""
    failed = replace(initial_result(plan, CellStatus.FAILED), failure_class="unknown",
                     reason=f"{type(exc).__name__}: {exc}"[:500], finished_at=datetime.now(UTC))
    store.save_cell(failed)
    return failed


def store_not_run(store: ResultsStore, plan: CellPlan, status: CellStatus, failure_class: str, reason: str) -> None:
    """Store a cell the run decided not to launch (import failed: failed; predicted OOM: skipped)."""
    store.save_cell(replace(initial_result(plan, status), failure_class=failure_class, reason=reason,
                            finished_at=datetime.now(UTC)))


__all__ = ["RunCore", "ledger_job", "make_backend", "open_core", "run_attempt", "store_crash", "store_not_run",
           "store_result"]
