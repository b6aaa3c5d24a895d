"""Time series of cell metrics across runs, regression alerts with a provenance diff. Pure.

A series is one cell's metric over runs, keyed by :class:`SeriesKey` (model, track, peft, the
whole layout, workload, device, cluster), oldest first. :func:`detect_regressions` judges one
run's point of every series with :mod:`scaling_matrix.detector` and attaches to each alert the
"what changed" diff of provenance between the baseline run and the current one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any, NamedTuple

from scaling_matrix.analysis import add_scaling
from scaling_matrix.detector import (DEFAULT_CONFIG, DetectorConfig, Direction, PooledNoise, night_stats,
                                     pooled_noise, regression_rule)
from scaling_matrix.errors import ScalingError
from scaling_matrix.layout import Layout

#: Which way is better for each metric the detector may watch.
METRIC_DIRECTIONS: dict[str, Direction] = {
    **dict.fromkeys(["step_time_s", "median_step_time_s", "mean_step_time_s", "steady_median_step_time_s",
                     "steady_mean_step_time_s", "p10_step_time_s", "p90_step_time_s", "wall_clock_s",
                     "train_time_s", "log_span_s", "peak_mem_mib", "all_peak_mem_mib", "avg_mem_mib",
                     "gpu_hours"], "lower"),
    **dict.fromkeys(["time_scaling", "mem_scaling", "speedup", "efficiency", "parallel_efficiency",
                     "samples_per_s", "samples_per_s_per_gpu", "tokens_per_s", "tokens_per_s_per_gpu",
                     "tflops_per_gpu"], "higher"),
}
#: Metrics watched by default: step time, wall clock, GPU-0 peak memory, time scaling.
DEFAULT_METRICS = ("median_step_time_s", "wall_clock_s", "peak_mem_mib", "time_scaling")
#: Provenance fields always shown in an alert's "what changed" table ('unknown' when missing).
PROVENANCE_FIELDS = ("container_image", "container_digest", "nemo_version", "git_rev", "driver_version",
                     "cuda_version", "nodelist", "partition", "cluster", "user")
UNKNOWN = "unknown"


class SeriesKey(NamedTuple):
    """Identity of one time series: a cell's configuration (its whole :class:`Layout`) on one cluster."""

    model: str
    track: str
    peft: str
    layout: Layout
    workload: str
    device: str
    cluster: str

    @property
    def gpus(self) -> int:
        """Return the series' world size (GPUs)."""
        return self.layout.world

    def label(self) -> str:
        """Return a readable one-line name, e.g. ``llama/data_parallel/lora/g4/tp1-pp1-ep1 @ ibex``."""
        return (f"{self.model}/{self.track}/{self.peft}/{self.layout.slug()} @ {self.cluster} "
                f"({self.workload}/{self.device})")

    def as_dict(self) -> dict[str, Any]:
        """Return the key as flat JSON-ready fields (layout columns included)."""
        return {"model": self.model, "track": self.track, "peft": self.peft, **self.layout.columns(),
                "workload": self.workload, "device": self.device, "cluster": self.cluster}


def series_key(row: Mapping[str, Any]) -> SeriesKey:
    """Return the series key of one stored cell row."""
    return SeriesKey(str(row["model"]), str(row["track"]), str(row["peft"]), Layout.from_columns(row),
                     str(row["workload"]), str(row["device"]), str(row["cluster"]))


@dataclass(frozen=True)
class Point:
    """One run's value of one metric in a series."""

    run_id: str
    at: datetime
    value: float
    cell_id: str
    provenance: Mapping[str, Any]


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def build_series(rows: Iterable[Mapping[str, Any]], metric: str) -> dict[SeriesKey, list[Point]]:
    """Return the series of ``metric`` per key from history rows (missing values skipped), oldest first."""
    out: dict[SeriesKey, list[Point]] = {}
    for row in rows:
        value = _number(row.get(metric))
        if value is None:
            continue
        point = Point(str(row["run_id"]), row["created_at"], value, str(row["cell_id"]),
                      row.get("provenance") or {})
        out.setdefault(series_key(row), []).append(point)
    for key, points in out.items():
        out[key] = _mean_per_run(points)
    return out


def _mean_per_run(points: list[Point]) -> list[Point]:
    """Return one point per run (repeats of a cell averaged), oldest first."""
    by_run: dict[str, list[Point]] = {}
    for p in points:
        by_run.setdefault(p.run_id, []).append(p)
    merged = [replace(ps[0], value=sum(p.value for p in ps) / len(ps)) for ps in by_run.values()]
    return sorted(merged, key=lambda p: (p.at, p.run_id))


@dataclass(frozen=True)
class Change:
    """One provenance field in the baseline run and the current run."""

    field: str
    before: str
    after: str

    @property
    def changed(self) -> bool:
        """Return True when the field differs (or is unknown on one side only)."""
        return self.before != self.after


def _fmt(value: Any) -> str:
    if value is None or value == "":
        return UNKNOWN
    if isinstance(value, list | tuple):
        return ",".join(map(str, value)) or UNKNOWN
    return str(value)


def provenance_diff(before: Mapping[str, Any], after: Mapping[str, Any],
                    fields: Sequence[str] = PROVENANCE_FIELDS) -> tuple[Change, ...]:
    """Return every provenance field of both runs (``fields`` first, then extras; missing: 'unknown')."""
    extra = sorted((set(before) | set(after)) - set(fields))
    return tuple(Change(f, _fmt(before.get(f)), _fmt(after.get(f))) for f in (*fields, *extra))


@dataclass(frozen=True)
class Alert:
    """A regression of one metric of one series in one run, with what changed since the baseline."""

    key: SeriesKey
    cell_id: str
    metric: str
    direction: Direction
    rule: str
    run_id: str
    value: float
    baseline_run_id: str
    baseline: float
    noise: float
    change_pct: float
    z: float
    history: int
    changes: tuple[Change, ...]

    def summary(self) -> str:
        """Return a one-line description naming the cell, metric, change and changed provenance."""
        changed = [f"{c.field} {c.before}→{c.after}" for c in self.changes if c.changed]
        return (f"{self.metric} of {self.key.label()}: {self.value:.4g} vs baseline {self.baseline:.4g} "
                f"({self.change_pct:+.1f}%, z={self.z:.1f}, {self.rule}, run {self.run_id} vs "
                f"{self.baseline_run_id}); changed: {'; '.join(changed) or 'nothing recorded'}")

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (changes as a list of dicts with a 'changed' flag)."""
        out = asdict(self)
        out["key"], out["series"] = self.key.as_dict(), self.key.label()
        out["changes"] = [{**asdict(c), "changed": c.changed} for c in self.changes]
        return out


class RegressionDetected(ScalingError):
    """Raised at the end of a run whose results regressed; carries the alerts (see the artifact)."""

    def __init__(self, run_id: str, alerts: Sequence[Alert], artifact_key: str = "") -> None:
        self.run_id, self.alerts, self.artifact_key = run_id, list(alerts), artifact_key
        where = f" (artifact {artifact_key})" if artifact_key else ""
        lines = "; ".join(a.summary() for a in self.alerts[:5])
        more = f"; and {len(self.alerts) - 5} more" if len(self.alerts) > 5 else ""
        super().__init__(f"{len(self.alerts)} regression(s) in run {run_id}{where}: {lines}{more}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.run_id, self.alerts, self.artifact_key))


def detect(points: Sequence[Point], key: SeriesKey, metric: str,
           config: DetectorConfig = DEFAULT_CONFIG, prior: PooledNoise | None = None) -> Alert | None:
    """Return an alert when the newest of ``points`` is a regression of ``metric``, else None."""
    direction = METRIC_DIRECTIONS[metric]
    stats = night_stats([p.value for p in points], direction, config, prior)
    rule = regression_rule(stats, config)
    if rule is None or stats is None:
        return None
    now = points[-1]
    base = points[-2] if rule == "1-night" else points[-3]
    z, effect = (stats.z1, stats.effect1) if rule == "1-night" else (stats.z2, stats.effect2)
    sign = 1.0 if direction == "lower" else -1.0
    return Alert(key=key, cell_id=now.cell_id, metric=metric, direction=direction, rule=rule,
                 run_id=now.run_id, value=now.value, baseline_run_id=base.run_id,
                 baseline=stats.centre, noise=stats.noise, change_pct=100 * sign * effect, z=z,
                 history=stats.n, changes=provenance_diff(base.provenance, now.provenance))


def detect_regressions(rows: Iterable[Mapping[str, Any]], run_id: str,
                       metrics: Sequence[str] = DEFAULT_METRICS,
                       config: DetectorConfig = DEFAULT_CONFIG) -> list[Alert]:
    """Return the alerts of ``run_id``'s cells, each judged against its own series in ``rows``.

    Series are cut at ``run_id`` (later runs are ignored); noise is pooled per metric over the
    series of the same cluster, workload and device.
    """
    rows = list(rows)
    alerts = []
    for metric in metrics:
        cut = {}
        for key, points in build_series(rows, metric).items():
            idx = [i for i, p in enumerate(points) if p.run_id == run_id]
            if idx:
                cut[key] = points[:idx[-1] + 1]
        groups: dict[tuple[str, str, str], list[SeriesKey]] = {}
        for key in cut:
            groups.setdefault((key.cluster, key.workload, key.device), []).append(key)
        for keys in groups.values():
            prior = pooled_noise([[p.value for p in cut[k]] for k in keys], config)
            for key in sorted(keys):
                alert = detect(cut[key], key, metric, config, prior)
                alerts += [alert] if alert else []
    return alerts


def with_scaling(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Return history rows with time_scaling, mem_scaling and efficiency added within each run."""
    out = [dict(r) for r in rows]
    by_run: dict[str, list[int]] = {}
    for i, row in enumerate(out):
        by_run.setdefault(str(row["run_id"]), []).append(i)
    for idx in by_run.values():
        df = add_scaling([{**out[i], "_i": i} for i in idx])
        for rec in df[["_i", "gpus", "baseline_gpus", "time_scaling", "mem_scaling"]].to_dict("records"):
            target = out[int(rec["_i"])]
            scaling, base = _number(rec["time_scaling"]), _number(rec["baseline_gpus"])
            target.update(time_scaling=scaling, mem_scaling=_number(rec["mem_scaling"]),
                          efficiency=scaling * base / rec["gpus"] if scaling is not None and base else None)
    return out


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def render_alerts_markdown(alerts: Sequence[Alert], run_id: str, matrix: str) -> str:
    """Return a markdown report of ``alerts``: one line each, then one "what changed" table per diff."""
    lines = [f"# Regressions — run {run_id} ({matrix})", "",
             f"{len(alerts)} regression(s) against each cell's trailing history:", ""]
    lines += [f"{i}. **{a.change_pct:+.1f}%** `{a.metric}` ({a.direction} is better) of `{a.cell_id}` "
              f"@ {a.key.cluster} ({a.key.workload}/{a.key.device}): {a.baseline:.4g} → **{a.value:.4g}** "
              f"(z={a.z:.1f}, {a.rule} rule, {a.history} runs of history)" for i, a in enumerate(alerts, 1)]
    diffs: dict[tuple[str, tuple[Change, ...]], list[int]] = {}
    for i, a in enumerate(alerts, 1):
        diffs.setdefault((a.baseline_run_id, a.changes), []).append(i)
    for (base, changes), numbers in diffs.items():
        changed = sum(c.changed for c in changes)
        lines += ["", f"## What changed — regression(s) {', '.join(map(str, numbers))}", "",
                  f"Baseline run `{base}` → this run `{run_id}`: {changed or 'no'} recorded field(s) differ.", "",
                  "| provenance | baseline run | this run |", "|---|---|---|"]
        lines += [f"| **{c.field}** (changed) | {_md(c.before)} | **{_md(c.after)}** |" if c.changed
                  else f"| {c.field} | {_md(c.before)} | {_md(c.after)} |" for c in changes]
    return "\n".join(lines) + "\n"
