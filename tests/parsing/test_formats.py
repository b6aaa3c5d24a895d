"""Each documented log quirk, on a fixture written from the documented formats, with exact numbers."""

from __future__ import annotations

import pytest

from scaling_matrix.parsing.progress import parse_file, parse_lines, parse_text
from scaling_matrix.parsing.summary import log_summary
from tests.parsing.conftest import FIX

GIB = 1024**3


@pytest.fixture(scope="module")
def quirks():
    return parse_file(FIX / "nemo_quirks.log")


def test_nemo_prefixes_truncated_prefix_and_exponents(quirks) -> None:
    assert quirks.format == "nemo"
    assert [s.step for s in quirks.steps] == [0, 1, 2, 3, 4, 5]
    assert quirks.steps[0].train_loss == 1249.0  # 1.249e+03
    assert quirks.steps[0].lr == 1.961e-06
    assert quirks.steps[2].lineno == 11  # the 'p/0 [default0]:' (truncated) prefix


def test_nemo_negative_timing_kept_and_reported(quirks) -> None:
    assert quirks.steps[2].step_time_s == -0.25
    assert "line 11: step 2 has a negative step time (-0.25 s)" in quirks.problems


def test_nemo_epoch_rollover_keys_by_global_step(quirks) -> None:
    s3 = quirks.steps[3]
    assert (s3.epoch, s3.iteration, s3.max_iteration, s3.step) == (1, 0, 5, 3)
    assert quirks.max_steps == 6


def test_nemo_restart_duplicates_keep_last_with_other_field_order(quirks) -> None:
    assert (quirks.steps[3].train_loss, quirks.steps[3].step_time_s, quirks.steps[3].lineno) == (1.875, 1.375, 19)
    assert (quirks.steps[4].train_loss, quirks.steps[4].step_time_s, quirks.steps[4].consumed_samples) == (1.125, 1.25, 40)
    assert "line 19: step 3 repeated; keeping the last" in quirks.problems
    assert "line 20: step 4 repeated; keeping the last" in quirks.problems


def test_nemo_truncated_and_interleaved_lines(quirks) -> None:
    assert "line 17: unparseable progress line" in quirks.problems
    assert len(quirks.problems) == 4


def test_nemo_validation_lines_and_val_loss(quirks) -> None:
    assert (quirks.sanity_iterations, quirks.validation_iterations, quirks.validation_runs) == (2, 4, 2)
    assert quirks.last_val_loss == 1.125


def test_nemo_stop_marker_then_late_progress_line(quirks) -> None:
    assert quirks.stopped_at == 6
    assert quirks.steps[-1].step == 5 and quirks.steps[-1].lineno == 24
    assert quirks.reached_last_step and quirks.completed and quirks.failure is None


def test_nemo_memory_and_tflops_fields(quirks) -> None:
    s = log_summary(quirks)
    assert s["peak_memory_bytes"] == 21_000_000_000
    assert s["peak_memory_allocated_bytes"] == 18_000_000_000
    assert s["tflops_per_gpu_mean"] == pytest.approx((101.5 + 120.25 + 119.75 + 120.5 + 121.5 + 122) / 6)


def test_job_footer(quirks) -> None:
    assert quirks.footer.total_s == 595.0
    assert quirks.footer.end_s - quirks.footer.start_s == 595.0
    assert quirks.footer.elapsed_s == 595.0


def test_summary_of_quirks(quirks) -> None:
    s = log_summary(quirks)
    assert s["step_times_s"] == [12.5, 1.5, -0.25, 1.375, 1.25, 1.5]
    assert (s["iterations"], s["last_global_step"], s["max_steps"]) == (6, 5, 6)
    assert (s["final_train_loss"], s["last_val_loss"], s["global_batch_size"], s["consumed_samples"]) == (
        0.9375, 1.125, 8, 48)


def test_field_order_is_irrelevant() -> None:
    a = parse_text("Training epoch 0, iteration 0/1 | global_step: 0 | train_step_timing in s: 2 | lr: 1e-4")
    b = parse_text("0: Training epoch 0, iteration 0/1 | lr: 1e-4 | train_step_timing in s: 2 | global_step: 0")
    assert a.steps == b.steps


def test_megatron() -> None:
    p = parse_file(FIX / "megatron.log")
    s = log_summary(p)
    assert p.format == "megatron" and p.first_step == 1
    assert [r.step for r in p.steps] == [1, 2, 3, 4, 5]
    assert s["step_times_s"] == pytest.approx([20.0, 4.65, 4.625, 4.675, 4.65], rel=1e-12)
    assert (s["max_steps"], s["global_batch_size"], s["consumed_samples"]) == (5, 512, 2560)
    assert s["final_train_loss"] == 9.75 and s["last_val_loss"] == 9.5
    assert p.steps[2].grad_norm == 33.055 and p.steps[0].lr == 1.5e-07
    assert s["peak_memory_reserved_bytes"] == 4096 * 1024**2  # max over ranks
    assert s["peak_memory_allocated_bytes"] == 2560 * 1024**2
    assert p.steps[1].timestamp_s - p.steps[0].timestamp_s == 5.0
    assert p.completed and s["problems"] == []


def test_automodel_v01() -> None:
    p = parse_file(FIX / "automodel_v01.log")
    assert p.format == "automodel"
    assert [(r.step, r.train_loss, r.grad_norm, r.tokens_per_s) for r in p.steps] == [
        (0, 2.0, 150.0, 5000.0), (1, 1.75, 120.0, 6900.0), (2, 1.5514, 102.0, 6924.5)]
    assert p.steps[2].max_memory_allocated == pytest.approx(11.66 * GIB)
    assert not p.completed and any("completion cannot be confirmed" in x for x in p.problems)


def test_automodel_current_with_val_lines() -> None:
    p = parse_file(FIX / "automodel_current.log")
    s = log_summary(p)
    assert [r.step for r in p.steps] == [0, 1, 3]
    assert p.steps[1].tokens_per_s_per_gpu == 862.5 and p.steps[1].lr == 1e-05
    assert p.steps[2].epoch == 1 and p.steps[2].num_label_tokens == 4100
    assert s["step_times_s"] == [None, 2.5, 2.5]  # from log timestamps (step 1 -> 3: 5 s / 2 steps)
    assert [(v.step, v.loss) for v in p.validations] == [(1, 1.9), (3, 1.6)]
    assert s["last_val_loss"] == 1.6 and s["peak_memory_bytes"] == 12 * GIB


def test_automodel_training_jsonl() -> None:
    p = parse_file(FIX / "training.jsonl")
    s = log_summary(p)
    assert p.format == "automodel"
    assert s["step_times_s"] == [2.0, 1.25, 1.25]  # num_tokens_per_step / tps
    assert s["final_train_loss"] == 1.5 and s["peak_memory_bytes"] == 12 * GIB
    assert "line 4: not an AutoModel metrics row" in p.problems


def test_jsonl_validation_rows() -> None:
    p = parse_lines(['{"step": 10, "epoch": 0, "loss": 1.25, "lr": 1e-5, "num_label_tokens": 99}'], "automodel")
    assert p.steps == [] and [(v.step, v.loss) for v in p.validations] == [(10, 1.25)]


def test_forced_format_ignores_other_formats() -> None:
    p = parse_file(FIX / "megatron.log", "nemo")
    assert p.steps == [] and p.format == "nemo"


def test_existing_fixture_still_parses_the_same() -> None:
    p = parse_file(FIX / "nemo_dp_lora.log")
    assert [s.step for s in p.steps] == [0, 1, 2, 3, 4] and p.steps[2].train_loss == 1.25
    assert p.max_steps == 5 and p.stopped_at == 5 and p.footer.total_s == 595.0
