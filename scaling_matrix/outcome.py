"""Failure taxonomy: how a finished cell is classified, and which classes are retried.

Pure: inputs are the scheduler state (or ``None`` for local processes), the exit code,
the signal (if any), the tail of the log and whether training reached its last step.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scaling_matrix.parsing.model import ParsedLog


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
    HF_AUTH = "hf_auth"
    NO_CHECKPOINT = "no_checkpoint"
    CRASH = "crash"  # an uncaught exception / C++ abort ended the process (no more specific class)
    UNKNOWN = "unknown"


#: Classes worth another attempt: the cause is the machine, not the cell.
TRANSIENT: frozenset[FailureClass] = frozenset(
    {FailureClass.NODE_FAIL, FailureClass.PREEMPTED, FailureClass.NCCL_TIMEOUT}
)

# Log signatures live in scaling_matrix.parsing.failures (whole-log evidence: level, context, position).

#: Launch failures caused by the scheduler or the node, not by the cell: worth a resubmission.
TRANSIENT_LAUNCH = re.compile(r"Socket timed out|Unable to create step|step creation temporarily disabled|"
                              r"Job step creation temporarily disabled|JobLaunchFailure|"
                              r"Communication connection failure|Zero Bytes were transmitted")


def is_retryable(failure_class: str | FailureClass | None, reason: str = "") -> bool:
    """Return True when an attempt that ended with ``failure_class`` (and ``reason``) may be retried."""
    if failure_class is None:
        return False
    klass = FailureClass(failure_class)
    return klass in TRANSIENT or (klass is FailureClass.LAUNCH_FAILED and bool(TRANSIENT_LAUNCH.search(reason)))


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
        return is_retryable(self.failure_class, self.reason)


def match_signature(log_text: str) -> tuple[FailureClass, str] | None:
    """Return the fatal log signature of ``log_text`` and its line, judged without progress information
    (warnings and exception text inside warnings never count; see :mod:`scaling_matrix.parsing.failures`)."""
    from scaling_matrix.parsing.failures import judge_text  # local: parsing imports this module's names

    failure = judge_text(log_text).failure
    return None if failure is None else (FailureClass(failure.klass), failure.line)


def _log_evidence(log_text: str, parsed: ParsedLog | None) -> tuple[FailureClass, str] | None:
    """Return the log's failure: the parser's whole-log judgement when ``parsed`` is given, else the text's."""
    if parsed is None:
        return match_signature(log_text)
    return None if parsed.failure is None else (FailureClass(parsed.failure), parsed.failure_line or "")


def classify_local(returncode: int | None, log_text: str, reached_last_step: bool,
                   cancelled: bool = False, parsed: ParsedLog | None = None) -> Outcome:
    """Classify a local-process attempt from its exit code, log and progress.

    A run that reached its last step and exited 0 is completed even if benign noise
    (NCCL warnings, non-fatal tracebacks) appears in the log. ``parsed``: the parsed log, whose
    whole-log judgement (failure class and line) is used; left out, the text is judged here.
    """
    if cancelled:
        return Outcome(FailureClass.CANCELLED, "cancelled by the orchestrator")
    if returncode == 0 and reached_last_step:
        return Outcome(FailureClass.COMPLETED, "exit 0 and last step reached")
    sig = _log_evidence(log_text, parsed)
    if sig:
        return Outcome(sig[0], sig[1])
    if returncode is not None and returncode < 0:
        return Outcome(FailureClass.UNKNOWN, f"killed by signal {-returncode}")
    if returncode == 0:
        return Outcome(FailureClass.UNKNOWN, "exit 0 but the last training step was never logged")
    if returncode == 127:
        return Outcome(FailureClass.LAUNCH_FAILED, "executable not found (exit 127)")
    return Outcome(FailureClass.UNKNOWN, f"exit code {returncode}")


# --- SLURM jobs -------------------------------------------------------------------------------
# Scheduler-final states that decide the class on their own (facts: shared/reference/slurm.md §6).
_SLURM_STATE_CLASSES: dict[str, tuple[FailureClass, str]] = {
    "TIMEOUT": (FailureClass.TIME_LIMIT, "SLURM state TIMEOUT (job hit its --time limit)"),
    "DEADLINE": (FailureClass.TIME_LIMIT, "SLURM state DEADLINE (job hit its --deadline)"),
    "NODE_FAIL": (FailureClass.NODE_FAIL, "SLURM state NODE_FAIL (a node of the job failed)"),
    "BOOT_FAIL": (FailureClass.NODE_FAIL, "SLURM state BOOT_FAIL (a node failed to boot)"),
    "PREEMPTED": (FailureClass.PREEMPTED, "SLURM state PREEMPTED"),
    "REQUEUED": (FailureClass.PREEMPTED, "SLURM state REQUEUED (job was put back in the queue)"),
    "OUT_OF_MEMORY": (FailureClass.OOM, "SLURM state OUT_OF_MEMORY (host memory limit)"),
    "CANCELLED": (FailureClass.CANCELLED, "SLURM state CANCELLED (scancel by a user or admin)"),
}


def _slurm_state_name(state: object) -> str:
    """Return the bare upper-case state name (``"CANCELLED by 0"`` → ``"CANCELLED"``)."""
    from scaling_matrix.slurm.states import SlurmState  # local: keeps this module import-light

    return SlurmState.parse(None if state is None else str(state)).value


def _signal_name(number: int) -> str:
    """Return ``"SIGKILL"``-style text for a signal number (``"signal N"`` if unnamed)."""
    import signal as _signal

    try:
        return _signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _killed_by(exit_code: int | None, signal: int | None) -> int | None:
    """Return the signal that killed the job: the ExitCode signal part, else 128+N exit status."""
    if signal:
        return signal
    if exit_code is not None and 128 < exit_code < 160:
        return exit_code - 128
    return None


def classify_slurm(state: object, exit_code: int | None, signal: int | None, log_text: str,
                   reached_last_step: bool, cancelled_by_us: bool = False,
                   parsed: ParsedLog | None = None) -> Outcome:
    """Return the outcome of a finished SLURM job from its state, ExitCode, log and progress.

    Args:
        state: a :class:`~scaling_matrix.slurm.states.SlurmState` or SLURM's text for it
            (``"CANCELLED by 0"`` works); ``None`` when the scheduler no longer knows the job.
        exit_code: status part of SLURM's ``ExitCode=status:signal`` (or srun's exit status).
        signal: signal part of ``ExitCode``; 0 or None when none.
        log_text: tail of the job's output (fatal signatures are looked up in it).
        reached_last_step: whether training logged its last step.
        cancelled_by_us: the orchestrator ran ``scancel`` on this job.
        parsed: the parsed log, whose whole-log judgement is used; left out, ``log_text`` is judged here.

    Note:
        The state decides, not the exit code: a CANCELLED job can show ``ExitCode=0:0``, and
        the workshop's batch scripts can end COMPLETED after failed training (their exit code
        is a later command's), so COMPLETED without the last step is never completed.
    """
    name = _slurm_state_name(state)
    if cancelled_by_us:
        return Outcome(FailureClass.CANCELLED, f"cancelled by the orchestrator (SLURM state {name})")
    if name == "COMPLETED" and reached_last_step:
        return Outcome(FailureClass.COMPLETED, "SLURM state COMPLETED and last step reached")
    if name in _SLURM_STATE_CLASSES:
        return Outcome(*_SLURM_STATE_CLASSES[name])
    sig = _log_evidence(log_text, parsed)
    if sig:
        return Outcome(sig[0], sig[1])
    return _classify_slurm_exit(name, exit_code, signal)


def _classify_slurm_exit(name: str, exit_code: int | None, signal: int | None) -> Outcome:
    """Return the outcome when no state rule and no log signature decided it."""
    killer = _killed_by(exit_code, signal)
    if killer is not None:
        return Outcome(FailureClass.UNKNOWN, f"SLURM state {name}: killed by {_signal_name(killer)} "
                                             f"(ExitCode {exit_code}:{signal or 0}) with no other evidence")
    if name == "COMPLETED":
        return Outcome(FailureClass.UNKNOWN, "SLURM state COMPLETED but the last training step was never "
                                             "logged (the batch script's exit code may be a later command's)")
    if name == "UNKNOWN" or not _is_terminal_name(name):
        return Outcome(FailureClass.UNKNOWN, f"SLURM state {name}: job not finished or state unknown")
    if exit_code == 127:
        return Outcome(FailureClass.LAUNCH_FAILED, "executable not found (exit 127)")
    return Outcome(FailureClass.UNKNOWN, f"SLURM state {name}, exit code {exit_code}")


def _is_terminal_name(name: str) -> bool:
    """Return True when ``name`` is a terminal SLURM state."""
    from scaling_matrix.slurm.states import SlurmState

    return SlurmState.parse(name).is_terminal
