"""The regression detector: direction, noise, history length, the two rules, robustness."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scaling_matrix.detector import (DetectorConfig, PooledNoise, night_stats, pooled_noise,
                                     regression_rule, threshold_for)

CFG = DetectorConfig()


def steady(n: int, sigma: float = 0.03, seed: int = 1, base: float = 1.0) -> list[float]:
    rng = random.Random(seed)
    return [base * math.exp(rng.gauss(0, sigma)) for _ in range(n)]


def test_too_little_history_gives_no_statistics() -> None:
    assert night_stats([1.0] * (CFG.min_history + 1), "lower") is None
    assert night_stats([1.0] * (CFG.min_history + 2), "lower") is not None
    assert regression_rule(None) is None


def test_big_jump_is_a_one_night_regression_and_improvement_is_not() -> None:
    hist = steady(20)
    assert regression_rule(night_stats(hist + [1.0, 1.25], "lower")) == "1-night"
    assert regression_rule(night_stats(hist + [1.0, 0.75], "lower")) is None  # faster is better


def test_direction_higher_is_better_flags_drops() -> None:
    hist = steady(20, base=0.9)
    assert regression_rule(night_stats(hist + [0.9, 0.7], "higher")) == "1-night"
    assert regression_rule(night_stats(hist + [0.9, 1.1], "higher")) is None


def test_moderate_shift_over_two_nights_is_caught_by_the_two_night_rule() -> None:
    hist = [1.0 + d for d in (0.01, -0.01, 0.02, -0.02, 0.0, 0.01, -0.01, 0.015, -0.015, 0.0)]
    one = night_stats(hist + [1.0, 1.04], "lower")
    two = night_stats(hist + [1.04, 1.04], "lower")
    assert regression_rule(one) is None and one is not None and one.z1 > 0
    assert regression_rule(two) == "2-night" and two is not None and two.z2 > two.z1


def test_two_night_rule_needs_tonight_worse_than_the_centre() -> None:
    hist = [1.0 + d for d in (0.01, -0.01, 0.02, -0.02, 0.0, 0.01, -0.01, 0.015, -0.015, 0.0)]
    stats = night_stats(hist + [1.2, 0.99], "lower")
    assert stats is not None and stats.z2 > 0 and stats.z1 < 0
    assert regression_rule(stats) is None


def test_min_effect_silences_tiny_changes_on_constant_metrics() -> None:
    hist = [16000.0] * 20
    assert regression_rule(night_stats(hist + [16000.0, 16050.0], "lower")) is None  # +0.3 %
    assert regression_rule(night_stats(hist + [16000.0, 17000.0], "lower")) == "1-night"  # +6 %


def test_one_outlier_night_in_the_baseline_does_not_mask_a_regression() -> None:
    hist = steady(20, sigma=0.01)
    hist[5] = 3.0  # a broken night long ago
    stats = night_stats(hist + [1.0, 1.12], "lower")
    assert stats is not None and stats.noise < 0.03
    assert regression_rule(stats) == "1-night"


def test_pooled_noise_needs_three_series_and_tightens_short_histories() -> None:
    assert pooled_noise([steady(10, seed=s) for s in range(2)]) is None
    pooled = pooled_noise([steady(30, seed=s) for s in range(12)])
    assert pooled is not None and 0.02 < pooled.relative < 0.04 and pooled.dof > 200
    short = steady(8, seed=99)
    alone = night_stats(short, "lower")
    helped = night_stats(short, "lower", prior=pooled)
    assert alone is not None and helped is not None
    assert helped.dof == alone.dof + CFG.prior_dof and helped.limit2 < alone.limit2
    capped = night_stats(short, "lower", prior=PooledNoise(0.03, 5))
    assert capped is not None and capped.dof == alone.dof + 5


def test_threshold_widens_for_few_degrees_of_freedom() -> None:
    limits = [threshold_for(d, CFG.threshold) for d in (2, 5, 20, 100, 10_000)]
    assert limits == sorted(limits, reverse=True)
    assert limits[-1] == pytest.approx(CFG.threshold, abs=1e-3)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=1e-6, max_value=1e6, allow_nan=False), min_size=0, max_size=60),
       st.sampled_from(["lower", "higher"]))
def test_never_crashes_and_statistics_are_finite(values: list[float], direction: str) -> None:
    stats = night_stats(values, direction)  # type: ignore[arg-type]
    if stats is not None:
        assert all(math.isfinite(v) for v in (stats.z1, stats.z2, stats.noise, stats.limit1, stats.limit2))
    assert regression_rule(stats) in (None, "1-night", "2-night")
