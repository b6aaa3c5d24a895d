"""Steady-state step-time statistics, throughput and cost of one cell. Pure, deterministic.

Steady-state rule (:func:`steady_state_start`): step 0 and the first steps after it are warm-up
(compilation, allocator growth, data-loader start), and their count varies, so no fixed skip-N.
Valid timings (finite, > 0; NeMo has logged negative ones) form the series ``x``. The reference
is the second half of ``x``: its median ``m`` and scale ``s = max(1.4826 * MAD, 1% of m)`` (the
floor keeps ``{:.4}``-quantised, near-constant series from having a zero band). The steady-state
window starts at the first index from which :data:`RUN` consecutive timings lie inside
``m ± K * s`` (K = 3); it never starts after the middle of the series, so at least half of the
steps are always measured. Series shorter than :data:`MIN_SERIES` keep every step but the first.

The median's 95% confidence interval is the distribution-free order-statistic interval
``[x_(l), x_(u)]`` with ``l, u = n/2 ∓ 1.96 * sqrt(n)/2`` (1-based, rounded outwards and clamped);
with fewer than 6 samples it is ``[min, max]``. No random numbers are involved.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from scaling_matrix.parsing.model import ParsedLog, ProgressRecord

K = 3.0
RUN = 3
MAD_TO_SIGMA = 1.4826
SCALE_FLOOR = 0.01
MIN_SERIES = 4


@dataclass(frozen=True)
class StepStats:
    """Step-time statistics over the steady-state window (seconds)."""

    warmup_steps: int  # valid timings dropped before the window
    first_step: int  # global step where the window starts
    steps: int  # timings in the window
    median_s: float
    p10_s: float
    p90_s: float
    ci_low_s: float
    ci_high_s: float
    mean_s: float


def steady_state_start(times: Sequence[float]) -> int:
    """Return the index of ``times`` where the steady-state window starts (see the module rule)."""
    n = len(times)
    if n < MIN_SERIES:
        return min(1, n - 1) if n > 1 else 0
    ref = times[n // 2:]
    m = statistics.median(ref)
    s = max(MAD_TO_SIGMA * statistics.median(abs(t - m) for t in ref), SCALE_FLOOR * abs(m))
    lo, hi = m - K * s, m + K * s
    inside = [lo <= t <= hi for t in times]
    for i in range(n // 2 + 1):
        if all(inside[i: i + RUN]):
            return i
    return n // 2


def median_ci(values: Sequence[float], z: float = 1.96) -> tuple[float, float]:
    """Return the order-statistic confidence interval of the median of ``values`` (95% by default)."""
    xs = sorted(values)
    n = len(xs)
    if n < 6:
        return xs[0], xs[-1]
    half = z * math.sqrt(n) / 2
    lo = max(1, math.floor(n / 2 - half))
    hi = min(n, math.ceil(n / 2 + half) + 1)
    return xs[lo - 1], xs[hi - 1]


def step_stats(steps: Sequence[ProgressRecord]) -> StepStats | None:
    """Return the steady-state statistics of the logged step times, or None without any valid one."""
    valid = [(r.step, r.step_time_s) for r in steps
             if r.step_time_s is not None and math.isfinite(r.step_time_s) and r.step_time_s > 0]
    if not valid:
        return None
    start = steady_state_start([t for _, t in valid])
    window = [t for _, t in valid[start:]]
    if len(window) >= 2:
        deciles = statistics.quantiles(window, n=10, method="inclusive")
        p10, p90 = deciles[0], deciles[-1]
    else:
        p10 = p90 = window[0]
    lo, hi = median_ci(window)
    return StepStats(start, valid[start][0], len(window), statistics.median(window), p10, p90, lo, hi,
                     statistics.fmean(window))


@dataclass(frozen=True)
class Throughput:
    """Samples and tokens per second, in total and per GPU (None when an input is unknown)."""

    samples_per_s: float | None = None
    samples_per_s_per_gpu: float | None = None
    tokens_per_s: float | None = None
    tokens_per_s_per_gpu: float | None = None


def _per(value: float | None, gpus: int | None) -> float | None:
    """Return ``value / gpus`` when both are known."""
    return value / gpus if value is not None and gpus else None


def throughput(step_time_s: float | None, global_batch_size: float | None, gpus: int | None = None,
               seq_length: int | None = None) -> Throughput:
    """Return throughput: samples/s = GBS / step time, tokens/s = GBS x seq_len / step time (upper bound).

    Note: SQuAD fine-tuning is unpacked, so tokens/s counts padding too (nemo.md §8).
    """
    if not step_time_s or step_time_s <= 0 or not global_batch_size:
        return Throughput()
    samples = global_batch_size / step_time_s
    tokens = samples * seq_length if seq_length else None
    return Throughput(samples, _per(samples, gpus), tokens, _per(tokens, gpus))


def log_span_s(steps: Sequence[ProgressRecord]) -> float | None:
    """Return last minus first step timestamp (formats that log them), else None."""
    stamps = [r.timestamp_s for r in steps if r.timestamp_s is not None]
    return max(stamps) - min(stamps) if len(stamps) >= 2 else None


def train_time_s(steps: Sequence[ProgressRecord]) -> float | None:
    """Return the sum of the positive logged step times (time inside the training loop), else None."""
    times = [r.step_time_s for r in steps if r.step_time_s is not None and r.step_time_s > 0]
    return math.fsum(times) if times else None


def gpu_hours(gpus: int | None, wall_clock_s: float | None) -> float | None:
    """Return ``gpus x wall clock / 3600`` (None when either is unknown)."""
    return gpus * wall_clock_s / 3600.0 if gpus and wall_clock_s is not None else None


def steady_metrics(parsed: ParsedLog, gpus: int | None = None, seq_length: int | None = None,
                   global_batch_size: float | None = None, wall_clock_s: float | None = None) -> dict[str, object]:
    """Return the steady-state fields of :class:`~scaling_matrix.records.CellMetrics` for one log.

    ``global_batch_size`` is the logged one when present (else the argument); the GPU-hours use
    ``wall_clock_s`` (job elapsed), else the footer's total time, else the log span, else the
    summed step times.
    """
    steps = parsed.steps
    stats = step_stats(steps)
    logged_gbs = next((r.global_batch_size for r in reversed(steps) if r.global_batch_size), None)
    gbs = logged_gbs or global_batch_size
    median = stats.median_s if stats else None
    tp = throughput(median, gbs, gpus, seq_length)
    first = stats.first_step if stats else None
    tflops = [r.tflops_per_gpu for r in steps if r.tflops_per_gpu is not None and (first is None or r.step >= first)]
    span, loop = log_span_s(steps), train_time_s(steps)
    wall = next((w for w in (wall_clock_s, parsed.footer.elapsed_s, span, loop) if w is not None), None)
    return {
        "warmup_steps": stats.warmup_steps if stats else None,
        "steady_first_step": first,
        "steady_steps": stats.steps if stats else None,
        "steady_median_step_time_s": median,
        "p10_step_time_s": stats.p10_s if stats else None,
        "p90_step_time_s": stats.p90_s if stats else None,
        "ci95_low_step_time_s": stats.ci_low_s if stats else None,
        "ci95_high_step_time_s": stats.ci_high_s if stats else None,
        "steady_mean_step_time_s": stats.mean_s if stats else None,
        "samples_per_s": tp.samples_per_s, "samples_per_s_per_gpu": tp.samples_per_s_per_gpu,
        "tokens_per_s": tp.tokens_per_s, "tokens_per_s_per_gpu": tp.tokens_per_s_per_gpu,
        "tflops_per_gpu": statistics.fmean(tflops) if tflops else None,
        "log_span_s": span, "train_time_s": loop,
        "gpu_hours": gpu_hours(gpus, wall),
    }
