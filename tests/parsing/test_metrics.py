"""Steady-state window, order-statistic CI, throughput and GPU-hours (scaling_matrix.metrics)."""

from __future__ import annotations

import random
import statistics

import pytest

from scaling_matrix.analysis import cell_metrics
from scaling_matrix.metrics import gpu_hours, median_ci, steady_state_start, step_stats, throughput
from scaling_matrix.parsing.model import ProgressRecord
from scaling_matrix.parsing.progress import parse_file
from tests.parsing.conftest import FIX


def _steps(times: list[float]) -> list[ProgressRecord]:
    return [ProgressRecord(0, i, len(times) - 1, i + 1, global_step=i, step_time_s=t, global_batch_size=8)
            for i, t in enumerate(times)]


def _series(seed: int = 0) -> list[float]:
    rng = random.Random(seed)
    return [12.0, 6.0, 4.0, 3.0, 2.0] + [1.6 + rng.gauss(0, 0.02) for _ in range(60)]


def test_five_slow_warmup_steps_then_noise() -> None:
    times = _series()
    assert steady_state_start(times) == 5
    stats = step_stats(_steps(times))
    assert stats is not None
    assert (stats.warmup_steps, stats.first_step, stats.steps) == (5, 5, 60)
    assert stats.ci_low_s <= 1.6 <= stats.ci_high_s  # the true median
    assert stats.p10_s < stats.median_s < stats.p90_s
    assert stats.mean_s == pytest.approx(statistics.fmean(times[5:]))


@pytest.mark.parametrize("seed", range(20))
def test_window_start_is_robust_to_noise(seed: int) -> None:
    assert steady_state_start(_series(seed)) == 5


def test_no_warmup_and_late_spike() -> None:
    times = [1.0, 1.01, 0.99, 1.0, 5.0, 1.0, 1.02, 0.98, 1.0, 1.01]
    assert steady_state_start(times) == 0


def test_window_never_starts_after_the_middle() -> None:
    assert steady_state_start([10.0, 9.0, 8.0, 7.0, 6.0, 5.0, 4.0, 3.0]) <= 4


def test_negative_and_missing_timings_are_ignored() -> None:
    stats = step_stats(_steps([7.0, 1.0, -0.5, 1.0, 1.0, 1.0]))
    assert stats is not None and stats.warmup_steps == 1 and stats.first_step == 1 and stats.median_s == 1.0


def test_median_ci_order_statistics() -> None:
    assert median_ci([3.0, 1.0, 2.0]) == (1.0, 3.0)
    lo, hi = median_ci([float(i) for i in range(1, 101)])
    assert (lo, hi) == (40.0, 61.0)


def test_throughput_and_gpu_hours() -> None:
    tp = throughput(2.0, 8, gpus=4, seq_length=2048)
    assert (tp.samples_per_s, tp.samples_per_s_per_gpu, tp.tokens_per_s, tp.tokens_per_s_per_gpu) == (
        4.0, 1.0, 8192.0, 2048.0)
    assert throughput(2.0, 8, gpus=4).tokens_per_s is None
    assert throughput(None, 8).samples_per_s is None
    assert gpu_hours(8, 1800.0) == 4.0 and gpu_hours(None, 1.0) is None


def test_cell_metrics_fills_the_new_fields() -> None:
    parsed = parse_file(FIX / "nemo_quirks.log")
    m = cell_metrics(parsed, {}, wall_clock_s=None, gpus=2, seq_length=2048)
    assert (m.warmup_steps, m.steady_first_step, m.steady_steps) == (1, 1, 4)
    assert m.steady_median_step_time_s == 1.4375 and m.step_time_s == 1.5  # last step: the workshop's number
    assert m.samples_per_s == pytest.approx(8 / 1.4375)
    assert m.tokens_per_s_per_gpu == pytest.approx(8 * 2048 / 1.4375 / 2)
    assert m.tflops_per_gpu == pytest.approx((120.25 + 119.75 + 120.5 + 121.5 + 122) / 5)
    assert m.gpu_hours == pytest.approx(2 * 595 / 3600)  # footer total time
    assert m.train_time_s == pytest.approx(12.5 + 1.5 + 1.375 + 1.25 + 1.5)


def test_cell_metrics_without_gpus_or_seq_length() -> None:
    m = cell_metrics(parse_file(FIX / "megatron.log"), {}, wall_clock_s=100.0)
    assert m.tokens_per_s is None and m.samples_per_s_per_gpu is None and m.gpu_hours is None
    assert m.log_span_s == 20.0 and m.samples_per_s == pytest.approx(512 / 4.65)
