"""SLURM job states: one enum, parsed in one place, classified by explicit sets."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["SlurmState"]


class SlurmState(StrEnum):
    """A SLURM job state (the long names printed by ``sacct``, ``squeue %T`` and ``scontrol``)."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETING = "COMPLETING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    TIMEOUT = "TIMEOUT"
    NODE_FAIL = "NODE_FAIL"
    PREEMPTED = "PREEMPTED"
    REQUEUED = "REQUEUED"
    REQUEUE_FED = "REQUEUE_FED"
    REQUEUE_HOLD = "REQUEUE_HOLD"
    RESV_DEL_HOLD = "RESV_DEL_HOLD"
    OUT_OF_MEMORY = "OUT_OF_MEMORY"
    BOOT_FAIL = "BOOT_FAIL"
    DEADLINE = "DEADLINE"
    SUSPENDED = "SUSPENDED"
    STOPPED = "STOPPED"
    SIGNALING = "SIGNALING"
    STAGE_OUT = "STAGE_OUT"
    CONFIGURING = "CONFIGURING"
    RESIZING = "RESIZING"
    REVOKED = "REVOKED"
    SPECIAL_EXIT = "SPECIAL_EXIT"
    UNKNOWN = "UNKNOWN"

    @classmethod
    def parse(cls, text: str | None) -> SlurmState:
        """Return the state named by ``text``; anything unrecognised is :attr:`UNKNOWN`.

        Accepts long names in any case, ``sacct`` decorations (``CANCELLED by 1000``,
        ``CANCELLED+``) and ``squeue %t`` abbreviations (``PD``, ``R``, ``CG``, ``OOM`` ...).

        Note:
            Never raises: new SLURM versions add states, and a poll must not crash on one.
        """
        if not text:
            return cls.UNKNOWN
        word = text.strip().split(" ", 1)[0].rstrip("+").upper()
        if word in cls.__members__:
            return cls[word]
        return _ABBREVIATIONS.get(word, cls.UNKNOWN)

    @property
    def is_terminal(self) -> bool:
        """Return True when the job has ended and its state will not change on its own."""
        return self in _TERMINAL

    @property
    def is_active(self) -> bool:
        """Return True when the job is queued, running or still being torn down."""
        return self in _ACTIVE


_TERMINAL: frozenset[SlurmState] = frozenset({
    SlurmState.COMPLETED, SlurmState.FAILED, SlurmState.CANCELLED, SlurmState.TIMEOUT,
    SlurmState.NODE_FAIL, SlurmState.PREEMPTED, SlurmState.OUT_OF_MEMORY, SlurmState.BOOT_FAIL,
    SlurmState.DEADLINE, SlurmState.REVOKED, SlurmState.SPECIAL_EXIT,
})

# REQUEUED and the holds go back to PENDING; COMPLETING/STAGE_OUT still hold resources.
_ACTIVE: frozenset[SlurmState] = frozenset({
    SlurmState.PENDING, SlurmState.RUNNING, SlurmState.COMPLETING, SlurmState.REQUEUED,
    SlurmState.REQUEUE_FED, SlurmState.REQUEUE_HOLD, SlurmState.RESV_DEL_HOLD,
    SlurmState.SUSPENDED, SlurmState.STOPPED, SlurmState.SIGNALING, SlurmState.STAGE_OUT,
    SlurmState.CONFIGURING, SlurmState.RESIZING,
})

_ABBREVIATIONS: dict[str, SlurmState] = {
    "PD": SlurmState.PENDING, "R": SlurmState.RUNNING, "CG": SlurmState.COMPLETING,
    "CD": SlurmState.COMPLETED, "F": SlurmState.FAILED, "CA": SlurmState.CANCELLED,
    "TO": SlurmState.TIMEOUT, "NF": SlurmState.NODE_FAIL, "PR": SlurmState.PREEMPTED,
    "RQ": SlurmState.REQUEUED, "RF": SlurmState.REQUEUE_FED, "RH": SlurmState.REQUEUE_HOLD,
    "RD": SlurmState.RESV_DEL_HOLD, "OOM": SlurmState.OUT_OF_MEMORY, "BF": SlurmState.BOOT_FAIL,
    "DL": SlurmState.DEADLINE, "S": SlurmState.SUSPENDED, "ST": SlurmState.STOPPED,
    "SI": SlurmState.SIGNALING, "SO": SlurmState.STAGE_OUT, "CF": SlurmState.CONFIGURING,
    "RS": SlurmState.RESIZING, "RV": SlurmState.REVOKED, "SE": SlurmState.SPECIAL_EXIT,
}
