"""Plots of one run: speedup vs ideal, memory per GPU vs GPU count, step-time trend across nights.

matplotlib's object API (``Figure`` + Agg canvas, no pyplot state), so plotting is safe in worker
threads. One PNG per plot and (model, track, workload, device) group; :func:`plots_markdown`
embeds them as ``data:`` URIs so a Prefect markdown artifact shows them without a file server.
"""

from __future__ import annotations

import base64
import io
import re
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from scaling_matrix.history import Alert, Point, SeriesKey, build_series
from scaling_matrix.records import CellStatus

GroupKey = tuple[str, str, str, str]  # model, track, workload, device
TREND_METRIC = "median_step_time_s"
_DPI = 100


@dataclass(frozen=True)
class Plot:
    """One rendered plot: what it shows, its PNG bytes and where it was written."""

    group: GroupKey
    kind: str  # speedup | memory | trend
    title: str
    png: bytes
    path: Path | None = None


def _slug(*parts: str) -> str:
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9]+", "-", "-".join(parts).lower())).strip("-")


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI, bbox_inches="tight")
    return buf.getvalue()


def _done(rows: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return sorted((r for r in rows if r.get("status") == CellStatus.COMPLETED), key=lambda r: (r["gpus"], r["tp"]))


def _gpu_axis(ax: Axes, gpus: Sequence[int]) -> None:
    ticks = sorted(set(gpus))
    if ticks and ticks[-1] > ticks[0]:
        ax.set_xscale("log", base=2)
    ax.set_xticks(ticks, [str(g) for g in ticks])
    ax.set_xlabel("GPUs")
    ax.grid(True, alpha=0.3)


def draw_speedup(ax: Axes, rows: Sequence[Mapping[str, Any]]) -> None:
    """Draw measured speedups (job time and median step time) and the ideal line on ``ax``."""
    done = _done(rows)
    if not done:
        ax.text(0.5, 0.5, "no completed cells", ha="center", transform=ax.transAxes)
        return
    base = done[0]
    gpus = [int(r["gpus"]) for r in done]
    ax.plot(gpus, [g / base["gpus"] for g in gpus], "k--", label=f"ideal (vs {base['gpus']} GPU)")
    job = [(g, r["time_scaling"]) for g, r in zip(gpus, done, strict=True) if r.get("time_scaling")]
    if job:
        ax.plot(*zip(*job, strict=True), "o-", label="job time (workshop time scaling)")
    b_step = base.get("median_step_time_s")
    step = [(g, b_step / r["median_step_time_s"]) for g, r in zip(gpus, done, strict=True)
            if b_step and r.get("median_step_time_s")]
    if step:
        ax.plot(*zip(*step, strict=True), "s-", label="median step time")
    _gpu_axis(ax, gpus)
    ax.set_ylabel("speedup")
    ax.legend(fontsize=8)


def draw_memory(ax: Axes, rows: Sequence[Mapping[str, Any]], unit: str = "GPU") -> None:
    """Draw GPU-0 peak/avg and all-GPU peak memory against the GPU count on ``ax``."""
    done = _done(rows)
    gpus = [int(r["gpus"]) for r in done]
    for column, style, label in (("peak_mem_mib", "o-", f"{unit} 0 peak"), ("avg_mem_mib", "^:", f"{unit} 0 avg"),
                                 ("all_peak_mem_mib", "s--", f"max peak over {unit}s")):
        pts = [(g, r[column]) for g, r in zip(gpus, done, strict=True) if r.get(column) is not None]
        if pts:
            ax.plot(*zip(*pts, strict=True), style, label=label)
    _gpu_axis(ax, gpus)
    ax.set_ylabel(f"memory per {unit} (MiB)")
    ax.set_ylim(bottom=0)
    if gpus:
        ax.legend(fontsize=8)


def draw_trend(ax: Axes, series: Mapping[SeriesKey, Sequence[Point]], alerts: Sequence[Alert]) -> None:
    """Draw each cell's step time across runs, in % of its own median, on ``ax``; alerts are red crosses.

    Relative values put cells of very different speeds on one scale, so a 5 % shift shows.
    """
    flagged = {(a.key, a.run_id) for a in alerts if a.metric == TREND_METRIC}
    for key, points in sorted(series.items()):
        med = statistics.median(p.value for p in points) or 1.0
        rel = [100 * (p.value / med - 1) for p in points]
        label = key.layout.label()
        dates = [p.at for p in points]
        ax.plot(dates, rel, "o-", ms=3, label=f"{label} (median {med:.3g} s)")  # type: ignore[arg-type]
        bad = [(p.at, r) for p, r in zip(points, rel, strict=True) if (key, p.run_id) in flagged]
        if bad:
            ax.plot(*zip(*bad, strict=True), "rx", ms=12, mew=3)
    ax.axhline(0, color="k", lw=0.8)
    ax.set_ylabel("median step time vs cell median (%)")
    ax.set_xlabel("run (night)")
    ax.grid(True, alpha=0.3)
    ax.tick_params(axis="x", labelrotation=30, labelsize=7)
    if series:
        ax.legend(fontsize=7)


def _figure(title: str) -> tuple[Figure, Axes]:
    fig = Figure(figsize=(5.2, 3.6))
    ax = fig.add_subplot()
    ax.set_title(title, fontsize=9)
    return fig, ax


def group_plots(group: GroupKey, rows: Sequence[Mapping[str, Any]], history: Sequence[Mapping[str, Any]],
                alerts: Sequence[Alert]) -> list[Plot]:
    """Return the speedup, memory and trend plots of one (model, track, workload, device) group."""
    model, track, workload, device = group
    name = f"{model} {track.replace('_', ' ')} ({workload}/{device})"
    unit = "rank" if workload == "tiny" else "GPU"
    out = []
    for kind, title in (("speedup", f"Speedup vs ideal — {name}"), ("memory", f"Memory per {unit} — {name}"),
                        ("trend", f"Step time across nights — {name}")):
        fig, ax = _figure(title)
        if kind == "speedup":
            draw_speedup(ax, rows)
        elif kind == "memory":
            draw_memory(ax, rows, unit)
        else:
            hist = [h for h in history if (h["model"], h["track"], h["workload"], h["device"]) == group]
            draw_trend(ax, build_series(hist, TREND_METRIC), alerts)
        out.append(Plot(group, kind, title, _png(fig)))
    return out


def render_plots(rows: Sequence[Mapping[str, Any]], history: Sequence[Mapping[str, Any]],
                 alerts: Sequence[Alert], out_dir: Path | None = None) -> list[Plot]:
    """Return every plot of a run (report rows + history), written as PNGs under ``out_dir`` if given."""
    groups: dict[GroupKey, list[Mapping[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["model"], r["track"], r["workload"], r["device"]), []).append(r)
    plots = [p for g in sorted(groups) for p in group_plots(g, groups[g], history, alerts)]
    if out_dir is None:
        return plots
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for p in plots:
        path = out_dir / f"{_slug(*p.group, p.kind)}.png"
        path.write_bytes(p.png)
        written.append(Plot(p.group, p.kind, p.title, p.png, path))
    return written


def data_uri(png: bytes) -> str:
    """Return ``png`` as a ``data:image/png;base64,...`` URI."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def plots_markdown(plots: Sequence[Plot], run_id: str, matrix: str) -> str:
    """Return a markdown document embedding ``plots`` as data URIs, one section per group."""
    lines = [f"# Plots — run {run_id} ({matrix})", ""]
    for group in dict.fromkeys(p.group for p in plots):
        model, track, workload, device = group
        lines += [f"## {model} — {track.replace('_', ' ')} (workload={workload}, device={device})", ""]
        lines += [f"![{p.title}]({data_uri(p.png)})" for p in plots if p.group == group]
        lines += [""]
    files = [str(p.path) for p in plots if p.path]
    if files:
        lines += [f"PNG files: `{Path(files[0]).parent}`", ""]
    return "\n".join(lines)
