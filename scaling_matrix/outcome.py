"""Failure taxonomy: how a finished cell is classified, and which classes are retried.

Pure: inputs are the scheduler state (or ``None`` for local processes), the exit code,
the signal (if any), the tail of the log and whether training reached its last step.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class FailureClass(StrEnum):
    """Outcome class of one cell attempt (``completed`` is success)."""

    COMPLETED = "completed"
    OOM = "oom"
    NCCL_TIMEOUT = "nccl_timeout"
    NODE_FAIL = "node_fail"
    PREEMPTED = "preempted"
    TIME_LIMIT = "time_limit"
    CANCELLED = "cancelled"
    LAUNCH_FAILED = "launch_failed"
    CONFIG_ERROR = "config_error"
    UNKNOWN = "unknown"


#: Classes worth another attempt: the cause is the machine, not the cell.
TRANSIENT: frozenset[FailureClass] = frozenset(
    {FailureClass.NODE_FAIL, FailureClass.PREEMPTED, FailureClass.NCCL_TIMEOUT}
)

# Log signatures, checked in order; the first match wins (facts: shared/reference/nemo.md §9).
_SIGNATURES: tuple[tuple[FailureClass, re.Pattern[str]], ...] = (
    (FailureClass.OOM, re.compile(r"(?:torch\.(?:cuda\.)?OutOfMemoryError|CUDA out of memory|"
                                  r"DefaultCPUAllocator: can't allocate memory|Out of memory|oom-kill)")),
    (FailureClass.NCCL_TIMEOUT, re.compile(r"Watchdog caught collective operation timeout|"
                                           r"NCCL.*timed? ?out|ProcessGroupGloo.*Timed out")),
    (FailureClass.TIME_LIMIT, re.compile(r"CANCELLED AT \S+ DUE TO TIME LIMIT")),
    (FailureClass.PREEMPTED, re.compile(r"DUE TO PREEMPTION")),
    (FailureClass.NODE_FAIL, re.compile(r"DUE TO NODE FAILURE")),
    (FailureClass.LAUNCH_FAILED, re.compile(r"execve\(\): .*No such file or directory|"
                                            r"command not found|FATAL:\s+could not open image")),
    (FailureClass.CONFIG_ERROR, re.compile(r"^(?:\S+: )?Unexpected error: ", re.M)),
)


@dataclass(frozen=True)
class Outcome:
    """Classification of one attempt plus the evidence that decided it."""

    failure_class: FailureClass
    reason: str

    @property
    def ok(self) -> bool:
        """True when the attempt completed."""
        return self.failure_class is FailureClass.COMPLETED

    @property
    def retryable(self) -> bool:
        """True when another attempt may succeed."""
        return self.failure_class in TRANSIENT


def match_signature(log_text: str) -> tuple[FailureClass, str] | None:
    """Return the first fatal log signature found in ``log_text`` and the matching line."""
    for klass, pattern in _SIGNATURES:
        m = pattern.search(log_text)
        if m:
            start = log_text.rfind("\n", 0, m.start()) + 1
            end = log_text.find("\n", m.end())
            return klass, log_text[start: end if end >= 0 else None].strip()[:300]
    return None


def classify_local(returncode: int | None, log_text: str, reached_last_step: bool,
                   cancelled: bool = False) -> Outcome:
    """Classify a local-process attempt from its exit code, log and progress.

    A run that reached its last step and exited 0 is completed even if benign noise
    (NCCL warnings, non-fatal tracebacks) appears in the log.
    """
    if cancelled:
        return Outcome(FailureClass.CANCELLED, "cancelled by the orchestrator")
    if returncode == 0 and reached_last_step:
        return Outcome(FailureClass.COMPLETED, "exit 0 and last step reached")
    sig = match_signature(log_text)
    if sig:
        return Outcome(sig[0], sig[1])
    if returncode is not None and returncode < 0:
        return Outcome(FailureClass.UNKNOWN, f"killed by signal {-returncode}")
    if returncode == 0:
        return Outcome(FailureClass.UNKNOWN, "exit 0 but the last training step was never logged")
    if returncode == 127:
        return Outcome(FailureClass.LAUNCH_FAILED, "executable not found (exit 127)")
    return Outcome(FailureClass.UNKNOWN, f"exit code {returncode}")
