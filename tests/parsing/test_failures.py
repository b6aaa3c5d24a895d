"""Failure judgement by evidence over the whole log (issue 12): severity, context, position, completion.

Fixtures are written for these tests (tests/fixtures/logs); the genuine logs are the real-log tier's.
"""

from __future__ import annotations

import pytest

from scaling_matrix.outcome import FailureClass, classify_local, match_signature
from scaling_matrix.parsing import failures
from scaling_matrix.parsing.progress import parse_file, parse_lines
from tests.parsing.conftest import FIX

STEP = "Training epoch 0, iteration {i}/9 | global_step: {i} | reduced_train_loss: 2 | train_step_timing in s: 1.5"
STOP = "INFO:pytorch_lightning.utilities.rank_zero:`Trainer.fit` stopped: `max_steps=10` reached."
OOM = "[rank0]: torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB."


def _steps(*ids: int) -> list[str]:
    return [STEP.format(i=i) for i in ids]


@pytest.mark.parametrize(("name", "klass"), [
    ("oom.log", "oom"), ("nccl_timeout.log", "nccl_timeout"), ("unexpected_error.log", "config_error"),
    ("hf_gated.log", "hf_auth"), ("no_checkpoint.log", "no_checkpoint"),
])
def test_fixture_failure_class(name: str, klass: str) -> None:
    p = parse_file(FIX / name)
    assert (p.failure, p.failure_signature) == (klass, klass)
    assert not p.completed and p.failure_lineno is not None


@pytest.mark.parametrize(("line", "klass"), [
    ("[rank3]: torch.cuda.OutOfMemoryError: CUDA out of memory.", "oom"),
    ("RuntimeError: CUDA error: out of memory", "oom"),
    ("terminate called after throwing an instance of 'c10::DistBackendError' NCCL timed out", "nccl_timeout"),
    ("slurmstepd: error: *** JOB 12 ON gpu1 CANCELLED AT 2026-02-10T10:00:00 DUE TO TIME LIMIT ***", "time_limit"),
    ("slurmstepd: error: *** STEP 12.0 ON gpu1 CANCELLED AT 2026-02-10T10:00:00 ***", "cancelled"),
    ("0: Unexpected error: You requested gpu: [0, 1] But your machine only has: [0]", "config_error"),
    ("requests.exceptions.HTTPError: 403 Client Error: Forbidden for url: https://huggingface.co/x", "hf_auth"),
    ("ValueError: Last checkpoint is unfinished and cannot be used to resume the training.", "no_checkpoint"),
    ("0: lightning.fabric.utilities.exceptions.NotFoundError: There were no checkpoints found. Cannot resume.",
     "no_checkpoint"),
    ("[default3]:terminate called after throwing an instance of 'c10::CUDAError'", "crash"),
    ("RuntimeError: transform: failed to synchronize: cudaErrorECCUncorrectable", "crash"),
])
def test_documented_signatures_are_fatal(line: str, klass: str) -> None:
    hit = match_signature(f"noise\n{line}\nmore noise\n")
    assert hit is not None and hit[0] == FailureClass(klass)


@pytest.mark.parametrize("line", [
    "[NeMo W 2026-02-10 10:00:00 nemo_logging:349] There were no checkpoints found in checkpoint_dir or no "
    "checkpoint folder at checkpoint_dir :/x. Training from scratch.",
    "WARNING:megatron.core.utils:CUDA out of memory",
    "exp/1 [default1]:[rank1]:[W] NCCL WARN Could not receive type from localRank 1 timed out",
    "[INFO] slurm says: Error: none",
])
def test_warnings_and_info_are_never_failures(line: str) -> None:
    assert match_signature(f"{line}\n") is None
    sig = failures.signature(line, [], 0)
    assert sig is None or not sig.fatal


def test_exception_text_inside_a_warning_is_not_fatal() -> None:
    text = "x.py:978: UserWarning: Scoring failed. Details:\nTraceback (most recent call last):\n" \
           "numpy.exceptions.AxisError: axis 1 is out of bounds\n\n  warnings.warn(\n"
    assert match_signature(text) is None
    assert match_signature(text.replace("  warnings.warn(\n", "")) is not None  # negative control


def test_benign_warning_run_completes() -> None:
    p = parse_lines(["[NeMo W 2026-01-01 00:00:00 nemo_logging:349] There were no checkpoints found in "
                     "checkpoint_dir or no checkpoint folder at checkpoint_dir :/x. Training from scratch.",
                     *_steps(*range(10)), STOP])
    assert p.completed and p.failure is None and p.signatures == []


def test_traceback_followed_by_progress_is_an_event_and_the_last_fatal_wins() -> None:
    p = parse_file(FIX / "warning_tracebacks_then_oom.log")
    assert p.failure == "oom" and "OutOfMemoryError" in (p.failure_line or "")
    assert p.failure_lineno == 14  # the first OOM line after the last progress line (line 11)
    early = [s for s in p.signatures if s.lineno < 11]
    assert early and all(not s.fatal or s.pos < (p.last_progress_pos or 0) for s in early)


def test_fatal_error_after_the_run_finished_does_not_win() -> None:
    assert parse_lines(_steps(*range(10)) + [STOP, OOM]).completed
    unfinished = parse_lines(_steps(*range(5)) + [OOM])
    assert unfinished.failure == "oom" and not unfinished.completed  # negative control


def test_a_signature_anywhere_in_a_long_log_is_found() -> None:
    lines = _steps(0) + [OOM] + ["x" * 99] * 2000  # the old 64 KiB tail rule missed this
    assert parse_lines(lines).failure == "oom"


def test_torchrun_restart_is_an_event_with_time_lost() -> None:
    p = parse_file(FIX / "nemo_restart.log")
    assert p.completed and p.failure is None
    assert len(p.restarts) == 1
    r = p.restarts[0]
    assert (r.lineno, r.after_step, r.resumed_at, r.steps_redone) == (11, 4, 3, 2)
    assert r.time_lost_s == pytest.approx(1.5 + 2.5)  # steps 3 and 4 of the first attempt
    assert p.progress_lines == 10 and len(p.steps) == 8
    crash = [s for s in p.signatures if s.klass == "crash"]
    assert crash and crash[0].fatal  # an event: progress followed and the run finished


def test_repeated_runs_of_markers_are_one_restart_and_epoch_resets_are_none() -> None:
    marker = "[default] Worker group FAILED. 3/3 attempts left; will restart worker group"
    p = parse_lines(_steps(0, 1, 2) + [marker, marker, "  restart_count=1"] + _steps(2, 3))
    assert len(p.restarts) == 1 and p.restarts[0].steps_redone == 1
    no_global = [f"Training epoch {e}, iteration {i}/4 | train_step_timing in s: 1" for e in (0, 1) for i in range(5)]
    assert parse_lines(no_global).restarts == []


def test_classify_local_uses_the_whole_log_judgement() -> None:
    text = "\n".join(_steps(0, 1) + [OOM]) + "\n"
    p = parse_lines(text.splitlines())
    out = classify_local(1, text, p.reached_last_step, parsed=p)
    assert out.failure_class is FailureClass.OOM
    finished = parse_lines(_steps(*range(10)) + [STOP])
    assert classify_local(0, "", finished.reached_last_step, parsed=finished).ok


def test_signature_classes_are_failure_classes() -> None:
    assert {k for k, _ in failures.SIGNATURES} <= {c.value for c in FailureClass}
