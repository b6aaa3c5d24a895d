"""classify_slurm: (state, ExitCode, log, progress) -> Outcome, one row per observed case (slurm.md §6-7)."""

from __future__ import annotations

import pytest

from scaling_matrix.outcome import FailureClass, classify_slurm
from scaling_matrix.slurm import SlurmState

FC = FailureClass
OOM_LOG = ("[rank0]: torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. "
           "GPU 0 has a total capacity of 79.15 GiB\n")
NCCL_LOG = ("[rank1]:[E ProcessGroupNCCL.cpp:563] Watchdog caught collective operation timeout: "
            "WorkNCCL(SeqNum=42, OpType=ALLREDUCE, Timeout(ms)=600000) ran for 600081 milliseconds "
            "before timing out.\nterminate called after throwing an instance of 'c10::DistBackendError'\n")
EXECVE_LOG = ("srun: error: vm: task 0: Exited with exit code 2\n"
              "slurmstepd-vm: error: execve(): /nonexistent/cmd: No such file or directory\n")
CONFIG_LOG = "Unexpected error: You set `--ntasks=2` in your SLURM bash script, but this variable is not supported.\n"
BENIGN_LOG = ("vm:123:456 [0] NCCL WARN [Service thread] Could not receive type from localRank 0\n"
              "Traceback (most recent call last):\n  torch._dynamo warning\n"
              "destroy_process_group() was not called\n")
TIMEOUT_LOG = "slurmstepd-vm: error: *** JOB 1 ON vm CANCELLED AT 2026-11-22T20:34:39 DUE TO TIME LIMIT ***\n"
CANCEL_LOG = "slurmstepd-vm: error: *** JOB 15 ON vm CANCELLED AT 2026-11-22T15:43:53 ***\n"

CASES = [
    # id, state, exit, signal, log, last_step, cancelled_by_us, expected class, reason contains
    ("completed", "COMPLETED", 0, 0, "", True, False, FC.COMPLETED, "last step"),
    ("completed-benign-noise", SlurmState.COMPLETED, 0, 0, BENIGN_LOG, True, False, FC.COMPLETED, ""),
    ("completed-without-last-step", "COMPLETED", 0, 0, BENIGN_LOG, False, False, FC.UNKNOWN, "never logged"),
    ("completed-but-oom-in-log", "COMPLETED", 0, 0, OOM_LOG, False, False, FC.OOM, "CUDA out of memory"),
    ("exit-3", "FAILED", 3, 0, "hi\n", False, False, FC.UNKNOWN, "exit code 3"),
    ("srun-false", "FAILED", 1, 0, "srun: error: vm: task 0: Exited with exit code 1\n", False, False,
     FC.UNKNOWN, "exit code 1"),
    ("kill-9-signal-part", "FAILED", 0, 9, "", False, False, FC.UNKNOWN, "SIGKILL"),
    ("srun-137", "FAILED", 137, 0, "srun: error: vm: task 0: Killed\n", False, False, FC.UNKNOWN, "SIGKILL"),
    ("sacct-srun-kill-9-folded", "FAILED", 9, 9, "", False, False, FC.UNKNOWN, "SIGKILL"),
    ("sacct-exit-137-looks-like-exit-9", "FAILED", 9, 0, "", False, False, FC.UNKNOWN, "exit code 9"),
    ("srun-143", "FAILED", 143, 0, "srun: error: vm: task 0: Terminated\n", False, False, FC.UNKNOWN, "SIGTERM"),
    ("srun-sigtermed-launch-failure", "FAILED", 0, 9, "srun: forcing job termination\n", False, False,
     FC.UNKNOWN, "SIGKILL"),
    ("timeout", "TIMEOUT", 0, 15, TIMEOUT_LOG, False, False, FC.TIME_LIMIT, "TIMEOUT"),
    ("deadline", "DEADLINE", 0, 0, "", False, False, FC.TIME_LIMIT, "DEADLINE"),
    ("node-fail", "NODE_FAIL", 0, 0, "", False, False, FC.NODE_FAIL, "NODE_FAIL"),
    ("boot-fail", "BOOT_FAIL", 0, 0, "", False, False, FC.NODE_FAIL, "BOOT_FAIL"),
    ("preempted", "PREEMPTED", 0, 15, "", False, False, FC.PREEMPTED, "PREEMPTED"),
    ("requeued", "REQUEUED", 0, 0, "", False, False, FC.PREEMPTED, "REQUEUED"),
    ("oom-state", "OUT_OF_MEMORY", 0, 125, "", False, False, FC.OOM, "OUT_OF_MEMORY"),
    ("oom-signature", "FAILED", 1, 0, OOM_LOG, False, False, FC.OOM, "torch.OutOfMemoryError"),
    ("cancelled-0-0", "CANCELLED by 0", 0, 0, CANCEL_LOG, False, False, FC.CANCELLED, "CANCELLED"),
    ("cancelled-0-15", "CANCELLED", 0, 15, CANCEL_LOG, False, False, FC.CANCELLED, "CANCELLED"),
    ("cancelled-by-us-any-state", "FAILED", 0, 9, "", False, True, FC.CANCELLED, "orchestrator"),
    ("cancelled-by-us-beats-completed", "COMPLETED", 0, 0, "", True, True, FC.CANCELLED, "orchestrator"),
    ("execve-exit-2", "FAILED", 2, 0, EXECVE_LOG, False, False, FC.LAUNCH_FAILED, "execve()"),
    ("exit-2-without-execve", "FAILED", 2, 0, "", False, False, FC.UNKNOWN, "exit code 2"),
    ("exit-127", "FAILED", 127, 0, "", False, False, FC.LAUNCH_FAILED, "127"),
    ("config-error", "FAILED", 1, 0, CONFIG_LOG, False, False, FC.CONFIG_ERROR, "Unexpected error"),
    ("nccl-watchdog-sigabrt", "FAILED", 134, 0, NCCL_LOG, False, False, FC.NCCL_TIMEOUT, "Watchdog"),
    ("oom-beats-nccl", "FAILED", 1, 0, OOM_LOG + NCCL_LOG, False, False, FC.OOM, ""),
    ("state-beats-log", "NODE_FAIL", 0, 0, NCCL_LOG, False, False, FC.NODE_FAIL, ""),
    ("running-is-not-final", "RUNNING", None, None, "", False, False, FC.UNKNOWN, "not finished"),
    ("vanished-job", None, None, None, "", False, False, FC.UNKNOWN, "UNKNOWN"),
]


@pytest.mark.parametrize(("state", "exit_code", "signal", "log", "last", "by_us", "expected", "reason"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_classify_slurm(state: object, exit_code: int | None, signal: int | None, log: str, last: bool,
                        by_us: bool, expected: FailureClass, reason: str) -> None:
    outcome = classify_slurm(state, exit_code, signal, log, last, cancelled_by_us=by_us)
    assert outcome.failure_class is expected, outcome.reason
    assert reason in outcome.reason


def test_retry_policy_follows_the_class() -> None:
    assert not classify_slurm("FAILED", 3, 0, "", False).retryable  # a plain failure is not retried
    assert classify_slurm("NODE_FAIL", 0, 0, "", False).retryable
    assert classify_slurm("PREEMPTED", 0, 0, "", False).retryable
    assert classify_slurm("FAILED", 134, 0, NCCL_LOG, False).retryable
    assert not classify_slurm("TIMEOUT", 0, 15, "", False).retryable
    assert classify_slurm("COMPLETED", 0, 0, "", True).ok
