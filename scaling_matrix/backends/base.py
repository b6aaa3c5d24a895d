"""The execution backend interface, in the spirit of ReFrame's scheduler / launcher split. Pure.

A backend runs *jobs* (a cell attempt or a model import) and knows nothing of cells, outcomes or
the store: ``submit(spec) -> Handle``, ``poll(ids) -> states`` (ONE query for every job),
``cancel(handles)``, ``collect(handle) -> RunEnd``. ``scaling_matrix.attempt`` drives any
backend the same way: ledger, submit, wait on the shared watcher, collect, judge, store.

Implementations (``backends/local.py``, ``backends/slurm.py``):

========  ==========================================  ===========================================
backend   submit                                      poll / cancel / collect
========  ==========================================  ===========================================
local     ranks as local process groups, queued        thread state / kill groups / exit codes,
          until ``capacity_gpus`` slots are free       ``stdout.log`` + ``stderr.log``
slurm     ``sbatch --parsable`` of the rendered        one ``sacct`` (or ``squeue`` + ``scontrol``)
          script, ``--comment`` names the attempt      for all jobs / one ``scancel`` / the job's
                                                       final status, ``slurm-<id>.out``
========  ==========================================  ===========================================
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from scaling_matrix.layout import Layout
from scaling_matrix.slurm.status import JobStatus


class JobState(StrEnum):
    """A job's state as every backend reports it."""

    QUEUED = "queued"  # submitted, waiting for resources (SLURM PENDING, local: waiting for slots)
    RUNNING = "running"
    DONE = "done"  # ended, whatever the outcome; collect() says how

    @property
    def is_terminal(self) -> bool:
        """Return True when the job has ended."""
        return self is JobState.DONE


@dataclass(frozen=True)
class JobSpec:
    """One job to run, fully rendered (no I/O happened yet).

    Attributes:
        name: job name (``--job-name``; local: for messages).
        argv: the workload's argv, run once per rank.
        layout: where the ranks run: ``nodes`` x ``devices`` ranks.
        workdir: the attempt's folder: logs, ``memory/``, the script, pids.
        env: exported to every rank.
        script: the rendered batch script (scheduler backends; None for local runs).
        comment: names the job in the scheduler, so a crashed orchestrator finds it again.
        timeout_s: the cell's time limit (local: enforced by the launcher; SLURM: the watcher's wait).
    """

    name: str
    argv: list[str]
    layout: Layout
    workdir: Path
    env: Mapping[str, str] = field(default_factory=dict)
    script: str | None = None
    comment: str = ""
    timeout_s: float = 3600.0


@dataclass(frozen=True)
class Handle:
    """A submitted job: ``id`` is the backend's key (the SLURM job id, or ``local-N``)."""

    id: str
    spec: JobSpec
    job_id: str | None = None  # the scheduler's job id; None for local processes


@dataclass(frozen=True)
class RunEnd:
    """How one job ended, as its backend saw it; the outcome is decided elsewhere (``cells.evaluate``).

    Attributes:
        log_paths: the job's output files, in reading order.
        memory_dir: where the memory monitor wrote its CSVs.
        returncode: exit status (local: the first failing rank's; SLURM: ExitCode's status part).
        cancelled: the orchestrator stopped it (a cancel request or the cell's time limit).
        scheduler: the scheduler's final word (state, ExitCode, times, nodes); None for local runs.
        error: why the job never started (a missing executable, a cancel while it waited), else None.
    """

    log_paths: tuple[Path, ...]
    memory_dir: Path
    returncode: int | None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    wall_clock_s: float | None = None
    cancelled: bool = False
    timed_out: bool = False
    scheduler: JobStatus | None = None
    error: str | None = None


class Backend(Protocol):
    """Runs jobs; one instance per run, shared by every cell and import of it.

    Attributes:
        name: ``local`` or ``slurm``.
        reattaches: jobs outlive the orchestrator, so the job ledger may re-attach to them.
        enforces_timeout: the backend stops a job at ``spec.timeout_s`` by itself.
        poll_interval_s: how often the run's watcher calls :meth:`poll` (injectable).
    """

    name: str
    reattaches: bool
    enforces_timeout: bool
    poll_interval_s: float

    def submit(self, spec: JobSpec) -> Handle:
        """Start (or queue) ``spec`` and return its handle at once; raise on a refused submission."""
        ...

    def poll(self, ids: list[str]) -> dict[str, JobState]:
        """Return the state of every job in ``ids`` from one query."""
        ...

    def cancel(self, handles: Iterable[Handle]) -> None:
        """Stop every job of ``handles`` (one call; finished jobs are fine)."""
        ...

    def collect(self, handle: Handle, cancelled: bool = False) -> RunEnd:
        """Return how ``handle`` ended (after :meth:`poll` said DONE, or after :meth:`cancel`)."""
        ...

    def find(self, comment: str) -> str | None:
        """Return the job id of the job named ``comment`` by an earlier orchestrator, or None."""
        ...

    def attach(self, job_id: str, spec: JobSpec) -> Handle:
        """Return a handle on a job submitted earlier (by a crashed orchestrator)."""
        ...


__all__ = ["Backend", "Handle", "JobSpec", "JobState", "RunEnd"]
