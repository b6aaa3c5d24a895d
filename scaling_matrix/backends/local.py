"""Local backend: a job's ranks are process groups on this machine, at most ``capacity`` at once.

``submit`` returns at once; the job waits (state QUEUED) until enough slots of the run's
:class:`~scaling_matrix.adapters.local.SlotPool` are free, runs under the
:class:`~scaling_matrix.adapters.local.LocalLauncher` (which enforces the cell's time limit and
records the rank groups so ``scaling-matrix cancel`` can kill them), then reports DONE.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

from scaling_matrix.adapters.local import LocalLauncher, LocalRun, SlotPool
from scaling_matrix.backends.base import Handle, JobSpec, JobState, RunEnd
from scaling_matrix.errors import LaunchError


@dataclass
class _Job:
    spec: JobSpec
    stop: threading.Event = field(default_factory=threading.Event)
    state: JobState = JobState.QUEUED
    run: LocalRun | None = None
    error: str | None = None
    thread: threading.Thread | None = None


class LocalBackend:
    """Runs jobs as local rank processes, bounded by ``capacity`` ranks at once."""

    name = "local"
    reattaches = False  # the ranks die with the orchestrator's cancel; nothing to re-attach to
    enforces_timeout = True

    def __init__(self, capacity: int, launcher: LocalLauncher | None = None, poll_interval_s: float = 0.2) -> None:
        self.slots = SlotPool(capacity)
        self.poll_interval_s = poll_interval_s
        self._launcher = launcher or LocalLauncher()
        self._jobs: dict[str, _Job] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def submit(self, spec: JobSpec) -> Handle:
        """Queue ``spec``; its ranks start as soon as ``spec.layout.world`` slots are free."""
        handle = Handle(f"local-{next(self._ids)}", spec)
        job = _Job(spec)
        job.thread = threading.Thread(target=self._run, args=(job,), name=handle.id, daemon=True)
        with self._lock:
            self._jobs[handle.id] = job
        job.thread.start()
        return handle

    def _run(self, job: _Job) -> None:
        ranks = job.spec.layout.world
        try:
            self.slots.acquire(ranks, cancel=job.stop)
        except LaunchError as exc:
            job.error, job.state = str(exc), JobState.DONE
            return
        job.state = JobState.RUNNING
        try:
            job.run = self._launcher.run(job.spec.argv, world=ranks, ranks_per_node=job.spec.layout.devices,
                                         cell_dir=job.spec.workdir, env=job.spec.env,
                                         timeout_s=job.spec.timeout_s, cancel=job.stop)
        except LaunchError as exc:
            job.error = str(exc)
        finally:
            self.slots.release(ranks)
            job.state = JobState.DONE

    def poll(self, ids: list[str]) -> dict[str, JobState]:
        """Return each job's state (no process is asked: the launcher threads keep it)."""
        with self._lock:
            return {i: self._jobs[i].state for i in ids if i in self._jobs}

    def cancel(self, handles: Iterable[Handle]) -> None:
        """Stop the jobs of ``handles``: queued ones never start, running ranks get SIGTERM then SIGKILL."""
        with self._lock:
            jobs = [self._jobs[h.id] for h in handles if h.id in self._jobs]
        for job in jobs:
            job.stop.set()

    def collect(self, handle: Handle, cancelled: bool = False) -> RunEnd:
        """Return how the job ended (waits for its launcher thread)."""
        with self._lock:
            job = self._jobs.pop(handle.id)
        if job.thread is not None:
            job.thread.join()
        workdir = job.spec.workdir
        run = job.run
        if run is None:
            return RunEnd((workdir / "stdout.log", workdir / "stderr.log"), workdir / "memory", None,
                          cancelled=cancelled or job.stop.is_set(), error=job.error or "the job never started")
        return RunEnd((run.stdout_path, run.stderr_path), workdir / "memory", run.returncode, run.started_at,
                      run.finished_at, run.wall_clock_s, cancelled=cancelled or run.cancelled,
                      timed_out=run.timed_out)

    def find(self, comment: str) -> str | None:
        """Return None: local jobs end with their orchestrator."""
        return None

    def attach(self, job_id: str, spec: JobSpec) -> Handle:
        """Never called (``reattaches`` is False)."""
        raise LaunchError(f"local jobs cannot be re-attached (job {job_id})")


__all__ = ["LocalBackend"]
