"""The detector simulation runs and its small-N figures are in the range of the published ones."""

from __future__ import annotations

import argparse

from scaling_matrix.detector import DetectorConfig
from tests.history.conftest import load_script


def test_small_simulation_keeps_false_alarms_low_and_catches_shifts() -> None:
    sim = load_script("detector_sim")
    args = argparse.Namespace(seed=3, series=240, history=20, nights=40, noise=0.03, shift=0.05,
                              dist="lognormal", cells=12, noise_spread=0.0, pool=True)
    shifted, steady = sim.collect(args, DetectorConfig())
    m = sim.measure(shifted, steady, DetectorConfig())
    assert m["fa"] < 0.02, m
    assert 0.3 < m["power_2"] <= m["power_3"] and m["power_1"] <= m["power_2"], m
    big = argparse.Namespace(**{**vars(args), "shift": 0.15, "series": 60})
    shifted, _ = sim.collect(big, DetectorConfig())
    assert sim.measure(shifted, steady, DetectorConfig())["power_1"] > 0.9  # a 15 % jump: caught at once
    assert 0.5 < sim.ideal_power(args, 0.01) < 0.53
