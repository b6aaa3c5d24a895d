"""Retry policy as data: which failure classes are resubmitted."""

from __future__ import annotations

import pytest

from scaling_matrix.outcome import FailureClass, classify_local, is_retryable


@pytest.mark.parametrize(("klass", "reason", "retried"), [
    ("completed", "", False), ("oom", "", False), ("config_error", "", False), ("time_limit", "", False),
    ("cancelled", "", False), ("hf_auth", "", False), ("no_checkpoint", "", False), ("unknown", "exit 3", False),
    ("node_fail", "", True), ("preempted", "", True), ("nccl_timeout", "", True),
    ("launch_failed", "execve(): /x/nemo: No such file or directory", False),
    ("launch_failed", "srun: error: Unable to create step for job 12: Job/step already completing", True),
    ("launch_failed", "srun: error: slurm_receive_msg: Socket timed out on send/recv operation", True),
])
def test_retry_decision(klass: str, reason: str, retried: bool) -> None:
    assert is_retryable(klass, reason) is retried
    assert is_retryable(FailureClass(klass), reason) is retried


def test_benign_noise_does_not_fail_a_finished_cell() -> None:
    log = ("Training epoch 0, iteration 4/4 | global_step: 4 | reduced_train_loss: 0.1 | train_step_timing in s: 1\n"
           "NCCL WARN Could not receive type from localRank 1\nTraceback (most recent call last):\n"
           "  torch._dynamo warning\n[rank: 0] Received SIGTERM: 15\n")
    assert classify_local(0, log, reached_last_step=True).ok
    out = classify_local(1, "srun: error: Unable to create step for job 7: Socket timed out", False)
    assert out.failure_class is FailureClass.LAUNCH_FAILED and out.retryable
