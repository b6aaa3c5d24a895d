"""Failure signatures (nemo.md §9) found in the log tail, and harmless lookalikes ignored."""

from __future__ import annotations

import pytest

from scaling_matrix.parsing.failures import TAIL_BYTES, find_failure
from scaling_matrix.parsing.progress import parse_file, parse_lines
from tests.parsing.conftest import FIX


@pytest.mark.parametrize(("name", "klass", "signature"), [
    ("oom.log", "oom", "oom"),
    ("nccl_timeout.log", "nccl_timeout", "nccl_timeout"),
    ("unexpected_error.log", "config_error", "config_error"),
    ("hf_gated.log", "hf_auth", "hf_auth"),
    ("no_checkpoint.log", "no_checkpoint", "no_checkpoint"),
])
def test_fixture_failure_class(name: str, klass: str, signature: str) -> None:
    p = parse_file(FIX / name)
    assert (p.failure, p.failure_signature) == (klass, signature)
    assert not p.completed


@pytest.mark.parametrize(("line", "klass"), [
    ("[rank3]: torch.cuda.OutOfMemoryError: CUDA out of memory.", "oom"),
    ("WARNING:megatron.core.utils:CUDA out of memory", "oom"),
    ("terminate called after throwing an instance of 'c10::DistBackendError' NCCL timed out", "nccl_timeout"),
    ("slurmstepd: error: *** JOB 12 ON gpu1 CANCELLED AT 2026-02-10T10:00:00 DUE TO TIME LIMIT ***", "time_limit"),
    ("0: Unexpected error: You requested gpu: [0, 1] But your machine only has: [0]", "config_error"),
    ("requests.exceptions.HTTPError: 403 Client Error: Forbidden for url: https://huggingface.co/x", "hf_auth"),
    ("ValueError: Last checkpoint is unfinished and cannot be used to resume the training.", "no_checkpoint"),
])
def test_documented_signatures_pass_the_keyword_filter(line: str, klass: str) -> None:
    hit = find_failure(f"noise\n{line}\nmore noise\n".encode())
    assert hit is not None and hit[0] == klass


def test_harmless_lookalikes_are_not_failures() -> None:
    p = parse_file(FIX / "nemo_quirks.log")  # NCCL WARN, destroy_process_group, SIGTERM, worker restart
    assert p.failure is None and p.completed


def test_oom_wins_over_nccl_like_match_signature() -> None:
    hit = find_failure(b"Watchdog caught collective operation timeout\ntorch.OutOfMemoryError: CUDA out of memory.\n")
    assert hit is not None and hit[0] == "oom"


def test_only_the_tail_is_searched() -> None:
    lines = ["torch.OutOfMemoryError: CUDA out of memory."] + ["x" * 99] * (TAIL_BYTES // 100 + 10)
    assert parse_lines(lines).failure is None
    assert parse_lines(lines[::-1]).failure == "oom"
