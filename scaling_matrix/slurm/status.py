"""The scheduler's view of one job, whichever command reported it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from scaling_matrix.slurm.states import SlurmState

__all__ = ["JobStatus"]


@dataclass(frozen=True)
class JobStatus:
    """What the scheduler says about one job.

    Attributes:
        job_id: SLURM job id (``"123"``, ``"123_4"`` for array tasks).
        state: parsed state; ``raw_state`` keeps SLURM's text (``"CANCELLED by 0"``).
        exit_code: status part of ``ExitCode=status:signal`` (None where not reported, e.g. squeue).
        signal: signal part of ``ExitCode`` (0 when none).
        elapsed_s: run time so far or in total, seconds.
        queue_wait_s: start minus submit time, seconds (None until the job starts).
        node_list: nodes as SLURM prints them (``"vm"``, ``"gpu[01-04]"``).
        reason: scheduler reason (``Priority``, ``NodeDown``, ``CANCELLED by 0``), None for "None".
        requeue: the job's ``Requeue`` flag (scontrol only).
        source: the command that reported it: ``sacct``, ``squeue``, ``scontrol``, ``jobcomp``,
            ``none`` (query failed) or ``squeue+scontrol`` for ids neither knew.
    """

    job_id: str
    state: SlurmState
    exit_code: int | None = None
    signal: int | None = None
    elapsed_s: float | None = None
    queue_wait_s: float | None = None
    node_list: str | None = None
    partition: str | None = None
    reason: str | None = None
    submit_time: datetime | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    requeue: bool | None = None
    raw_state: str = ""
    source: str = ""

    @property
    def is_terminal(self) -> bool:
        """Return True when the job has ended."""
        return self.state.is_terminal

    @property
    def is_active(self) -> bool:
        """Return True when the job is queued or running."""
        return self.state.is_active
