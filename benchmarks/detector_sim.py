"""Simulate the regression detector: power on a step-time shift, false alarms on steady series.

Every series is one cell's nightly step time with run-to-run noise (lognormal or normal, relative
sigma ``--noise``). Power: ``--history`` steady nights, then a ``--shift`` slowdown from the next
night on; detected "within k nights" when the detector alerts on one of the first k shifted
nights. False-alarm rate: alerts per evaluated cell-night on steady series of ``--nights``
nights (every night with enough history counts, so short histories are included).

    .venv/bin/python benchmarks/detector_sim.py                 # the shipped settings
    .venv/bin/python benchmarks/detector_sim.py --tune          # threshold sweep
    .venv/bin/python benchmarks/detector_sim.py --no-pool --noise-spread 0.5 --dist normal ...

Prints the seed and the number of series with every figure.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from statistics import NormalDist

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scaling_matrix.detector import (DetectorConfig, NightStats, night_stats,  # noqa: E402
                                     pooled_noise, regression_rule, threshold_for)

Noise = Callable[[random.Random], float]



def noise_model(kind: str, sigma: float) -> Noise:
    """Return a sampler of the multiplicative noise factor (mean ~1, relative sd ``sigma``)."""
    if kind == "lognormal":
        return lambda rng: math.exp(rng.gauss(0.0, sigma))
    return lambda rng: 1.0 + rng.gauss(0.0, sigma)


def series(rng: random.Random, nights: int, noise: Noise, shift_at: int | None = None,
           shift: float = 0.0) -> list[float]:
    """Return one nightly step-time series (base 1.0), slowed by ``shift`` from ``shift_at`` on."""
    return [(1.0 + (shift if shift_at is not None and i >= shift_at else 0.0)) * noise(rng)
            for i in range(nights)]


def matrix(rng: random.Random, args: argparse.Namespace, nights: int,
           shift_at: int | None = None) -> list[list[float]]:
    """Return ``--cells`` series of one matrix (cell 0 shifted when ``shift_at`` is given)."""
    out = []
    for cell in range(args.cells):
        sigma = args.noise * rng.uniform(1 - args.noise_spread, 1 + args.noise_spread)
        out.append(series(rng, nights, noise_model(args.dist, sigma),
                          shift_at if cell == 0 else None, args.shift))
    return out


def night(cells: list[list[float]], t: int, config: DetectorConfig, pool: bool) -> list[NightStats | None]:
    """Return the detector statistics of every cell on night ``t`` (noise pooled over the matrix)."""
    upto = [values[:t + 1] for values in cells]
    prior = pooled_noise(upto, config) if pool else None
    return [night_stats(values, "lower", config, prior) for values in upto]


def alerts(stats: NightStats | None, config: DetectorConfig) -> bool:
    """Return True when ``stats`` alerts under ``config`` (its threshold re-applied)."""
    if stats is None:
        return False
    limits = replace(stats, limit1=threshold_for(stats.dof, config.jump_threshold),
                     limit2=threshold_for(stats.dof, config.threshold))
    return regression_rule(limits, config) is not None


def collect(args: argparse.Namespace, config: DetectorConfig) -> tuple[list[list], list[NightStats | None]]:
    """Return (per shifted cell: stats of its first 3 shifted nights, stats of every steady cell-night)."""
    rng = random.Random(args.seed)
    shifted = []
    for _ in range(args.series):
        cells = matrix(rng, args, args.history + 3, shift_at=args.history)
        shifted.append([night(cells, args.history + k, config, args.pool)[0] for k in range(3)])
    steady: list[NightStats | None] = []
    for _ in range(math.ceil(args.series / args.cells)):
        cells = matrix(rng, args, args.nights)
        for t in range(config.min_history + 1, args.nights):
            steady += night(cells, t, config, args.pool)
    return shifted, steady


def measure(shifted: list[list], steady: list[NightStats | None], config: DetectorConfig) -> dict[str, float]:
    """Return power within 1/2/3 nights and the false-alarm rates (overall and by history length)."""
    out: dict[str, float] = {}
    for k in (1, 2, 3):
        out[f"power_{k}"] = sum(any(alerts(s, config) for s in nights[:k]) for nights in shifted) / len(shifted)
    flat = steady
    out["fa"] = sum(alerts(s, config) for s in flat) / len(flat)
    out["evaluations"] = len(flat)
    for lo, hi in ((5, 9), (10, 19), (20, 10**6)):
        part = [s for s in flat if s is not None and lo <= s.n <= hi]
        out[f"fa_n{lo}"] = sum(alerts(s, config) for s in part) / max(len(part), 1)
    return out


def report(label: str, args: argparse.Namespace, m: dict[str, float]) -> None:
    """Print one line of figures."""
    print(f"{label}: power within 1/2/3 nights = {m['power_1']:.1%} / {m['power_2']:.1%} / {m['power_3']:.1%} "
          f"({args.series} shifted series, {args.history} nights of history); false alarms = {m['fa']:.2%} "
          f"per cell-night ({int(m['evaluations'])} cell-nights; history 5-9: {m['fa_n5']:.2%}, "
          f"10-19: {m['fa_n10']:.2%}, >=20: {m['fa_n20']:.2%})")


def main(argv: list[str] | None = None) -> int:
    """Run the simulation; return 0 when the false-alarm rate is at most 1 % per cell-night, else 1."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=20260806)
    ap.add_argument("--series", type=int, default=4000, help="series per scenario (N)")
    ap.add_argument("--history", type=int, default=20, help="steady nights before the shift")
    ap.add_argument("--nights", type=int, default=60, help="nights per steady series")
    ap.add_argument("--noise", type=float, default=0.03, help="relative run-to-run noise (sigma)")
    ap.add_argument("--shift", type=float, default=0.05, help="relative step-time regression")
    ap.add_argument("--dist", choices=["lognormal", "normal"], default="lognormal")
    ap.add_argument("--cells", type=int, default=12, help="cells per matrix (noise is pooled over them)")
    ap.add_argument("--noise-spread", type=float, default=0.0,
                    help="per-cell noise = noise x U(1-spread, 1+spread) (heterogeneous cells)")
    ap.add_argument("--no-pool", dest="pool", action="store_false", help="per-series noise only")
    ap.add_argument("--tune", action="store_true", help="sweep the two thresholds")
    args = ap.parse_args(argv)
    config = DetectorConfig()
    print(f"seed={args.seed} N={args.series} noise={args.noise:.0%} ({args.dist}, spread {args.noise_spread:.0%}) "
          f"shift=+{args.shift:.0%} history={args.history} steady nights={args.nights} cells/matrix={args.cells} "
          f"pooled={args.pool} config={config}")
    shifted, steady = collect(args, config)
    if args.tune:
        for jump in (3.0, 3.5, 4.0):
            for th in [round(2.3 + 0.05 * i, 2) for i in range(9)]:
                report(f"jump_threshold={jump:.2f} threshold={th:.2f}", args,
                       measure(shifted, steady, replace(config, threshold=th, jump_threshold=jump)))
    m = measure(shifted, steady, config)
    report("shipped", args, m)
    print(f"reference: a 2-night z-test with a perfectly known baseline and noise, at the same false-alarm "
          f"rate, catches {ideal_power(args, m['fa']):.1%} within 2 nights")
    return 0 if m["fa"] <= 0.01 else 1


def ideal_power(args: argparse.Namespace, fa: float) -> float:
    """Return the power of the mean-of-2-nights z-test with known centre and noise at false-alarm rate ``fa``."""
    z = NormalDist().inv_cdf(1 - max(fa, 1e-9))
    return 1 - NormalDist().cdf(z - args.shift / args.noise * math.sqrt(2))


if __name__ == "__main__":
    raise SystemExit(main())
