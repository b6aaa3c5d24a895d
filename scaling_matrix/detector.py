"""Regression detector over one metric's series: robust baseline, noise, two rules. Pure.

Judges the newest value of a series (oldest first):

* baseline: up to ``window`` values before the newest two (at least ``min_history``); values
  further than ``outlier_z`` robust z (median/MAD) from the median are dropped, the rest give
  the centre (mean) and the noise (standard deviation). The noise is blended with the noise
  pooled over sibling series (same metric and cluster) worth ``prior_dof`` observations, and
  floored at ``min_noise`` x centre. Deviations are signed so that positive means worse.
* ``2-night`` rule: z of the mean of last night and tonight > ``threshold``, tonight itself worse
  than the centre (a shift that started yesterday; the efficient test for a moderate shift);
  ``1-night`` rule: z of tonight alone > ``jump_threshold`` (a large jump, caught at once).
  Both z include the centre's own uncertainty and both limits widen with fewer degrees of
  freedom (Student-t), so false alarms stay near target.
* either rule also needs a relative change of at least ``min_effect`` (no alert for 0.1 % on a
  nearly constant metric such as peak memory).

Tuned and measured by ``benchmarks/detector_sim.py``.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

Direction = Literal["lower", "higher"]


@dataclass(frozen=True)
class DetectorConfig:
    """Detector settings; the defaults are the ones tuned by ``benchmarks/detector_sim.py``.

    ``prior_dof``: weight (pseudo-observations) of the noise pooled over the other series of the
    same metric and cluster, blended with the series' own noise estimate.
    """

    window: int = 30
    min_history: int = 5
    threshold: float = 2.5
    jump_threshold: float = 3.5
    min_effect: float = 0.02
    min_noise: float = 0.005
    outlier_z: float = 3.5
    trim_from: int = 10
    prior_dof: int = 60


#: The shipped settings (immutable; the default of every function here).
DEFAULT_CONFIG = DetectorConfig()


@dataclass(frozen=True)
class NightStats:
    """Detector statistics of the newest point (positive z = worse)."""

    centre: float
    noise: float
    n: int
    dof: int
    z1: float
    z2: float
    effect1: float
    effect2: float
    limit1: float
    limit2: float


def _baseline(values: Sequence[float], config: DetectorConfig) -> list[float]:
    """Return the baseline window: up to ``window`` points before the newest two."""
    return list(values[:-2][-config.window:])


def _robust(base: Sequence[float], config: DetectorConfig) -> tuple[float, float, int]:
    """Return (trimmed mean, trimmed standard deviation, points kept) of ``base``.

    Points further than ``outlier_z`` robust z (median/MAD) from the median are dropped first,
    once the baseline has ``trim_from`` points (trimming fewer underestimates the noise).
    """
    med = statistics.median(base)
    mad = 1.4826 * statistics.median(abs(x - med) for x in base)
    trim = len(base) >= config.trim_from and mad > 0
    kept = [x for x in base if not trim or abs(x - med) <= config.outlier_z * mad]
    mean = math.fsum(kept) / len(kept)
    sd = math.sqrt(math.fsum((x - mean) ** 2 for x in kept) / (len(kept) - 1)) if len(kept) > 1 else 0.0
    return mean, sd, len(kept)


class PooledNoise(NamedTuple):
    """Relative noise (fraction of the centre) pooled over sibling series, and its degrees of freedom."""

    relative: float
    dof: int


def pooled_noise(series_values: Iterable[Sequence[float]],
                 config: DetectorConfig = DEFAULT_CONFIG) -> PooledNoise | None:
    """Return the relative noise pooled over the baselines of several series (None: < 3 usable)."""
    num, dof, used = 0.0, 0, 0
    for values in series_values:
        base = _baseline(values, config)
        if len(base) < config.min_history:
            continue
        centre, sd, n = _robust(base, config)
        if centre and n > 1:
            num, dof, used = num + (n - 1) * (sd / abs(centre)) ** 2, dof + n - 1, used + 1
    return PooledNoise(math.sqrt(num / dof), dof) if used >= 3 and dof else None


def threshold_for(dof: int, z: float) -> float:
    """Return the limit for nominal z threshold ``z`` when the noise has ``dof`` degrees of freedom.

    A Cornish-Fisher expansion of the Student-t quantile: the limit widens as ``dof`` shrinks.
    """
    nu = max(dof, 1)
    return z + (z ** 3 + z) / (4 * nu) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * nu ** 2)


def night_stats(values: Sequence[float], direction: Direction,
                config: DetectorConfig = DEFAULT_CONFIG,
                prior: PooledNoise | None = None) -> NightStats | None:
    """Return the statistics of the newest of ``values`` (None when the history is too short).

    Args:
        values: the series, oldest first; the newest value is tonight's.
        direction: which way is better for this metric.
        config: detector settings.
        prior: noise pooled over sibling series (:func:`pooled_noise`), worth at most
            ``config.prior_dof`` observations.
    """
    base = _baseline(values, config)
    if len(base) < config.min_history:
        return None
    centre, sd, n = _robust(base, config)
    dof = n - 1
    weight = min(config.prior_dof, prior.dof) if prior is not None else 0
    if prior is not None and weight > 0:
        prior_var = (prior.relative * centre) ** 2
        sd = math.sqrt((dof * sd ** 2 + weight * prior_var) / (dof + weight))
        dof += weight
    noise = max(sd, config.min_noise * abs(centre), 1e-12)
    sign = 1.0 if direction == "lower" else -1.0
    d_now, d_prev = sign * (values[-1] - centre), sign * (values[-2] - centre)
    scale = abs(centre) or 1.0
    return NightStats(centre=centre, noise=noise, n=n, dof=dof,
                      z1=d_now / (noise * math.sqrt(1 + 1 / n)),
                      z2=(d_now + d_prev) / (noise * math.sqrt(2 + 4 / n)),
                      effect1=d_now / scale, effect2=(d_now + d_prev) / 2 / scale,
                      limit1=threshold_for(dof, config.jump_threshold),
                      limit2=threshold_for(dof, config.threshold))


def regression_rule(stats: NightStats | None, config: DetectorConfig = DEFAULT_CONFIG) -> str | None:
    """Return ``'1-night'`` or ``'2-night'`` when ``stats`` is a regression, else None."""
    if stats is None:
        return None
    if stats.z1 > stats.limit1 and stats.effect1 >= config.min_effect:
        return "1-night"
    if stats.z2 > stats.limit2 and stats.effect2 >= config.min_effect and stats.z1 > 0:
        return "2-night"
    return None


__all__ = ["DEFAULT_CONFIG", "DetectorConfig", "Direction", "NightStats", "PooledNoise", "night_stats",
           "pooled_noise", "regression_rule", "threshold_for"]
