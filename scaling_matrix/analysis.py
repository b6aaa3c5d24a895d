"""Metrics per cell and the workshop's scaling tables. Pure (pandas only for tables)."""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import asdict
from typing import Any

import pandas as pd

from scaling_matrix.efficiency import efficiency  # default FLOP convention (scaling_matrix/flops.py)
from scaling_matrix.metrics import steady_metrics
from scaling_matrix.parsing.memory import MemorySummary
from scaling_matrix.parsing.progress import ParsedLog
from scaling_matrix.records import CellMetrics, CellStatus

#: Column names of the workshop's four scaling tables (reference/workshop.md §8); ``{b}`` is the
#: table's baseline GPU count ("vs 1 GPU", "vs 2 GPU", "vs 4 GPU" in the workshop's tables).
WORKSHOP_COLUMNS = [
    "GPUs", "Batch per GPU", "Total job time (HH:MM:SS)", "Train step time (s)",
    "Last reduced_train_loss", "GPU 0 Peak (MiB)", "GPU 0 Avg (MiB)", "GPU 0 Mode (MiB)",
    "Time scaling vs {b} GPU", "Peak memory scaling vs {b} GPU",
]
GROUP_KEYS = ["model", "track", "workload", "device"]
NUMERIC = ["step_time_s", "median_step_time_s", "mean_step_time_s", "wall_clock_s", "first_loss",
           "final_loss", "last_val_loss", "peak_mem_mib", "avg_mem_mib", "mode_mem_mib", "all_peak_mem_mib",
           "steady_median_step_time_s", "tokens_per_s_per_gpu", "samples_per_s"]


def cell_metrics(parsed: ParsedLog, memory: dict[int, MemorySummary],
                 wall_clock_s: float | None, gpus: int | None = None,
                 seq_length: int | None = None, global_batch_size: float | None = None) -> CellMetrics:
    """Return the metrics of one cell from its parsed log, memory summaries and wall clock.

    ``gpus`` enables per-GPU throughput and GPU-hours, ``seq_length`` tokens/s (steady-state
    fields: :func:`scaling_matrix.metrics.steady_metrics`).
    """
    steps = parsed.steps
    m = CellMetrics(steps_logged=len(steps), max_steps=parsed.max_steps,
                    reached_last_step=parsed.reached_last_step, wall_clock_s=wall_clock_s)
    if steps:
        last = steps[-1]
        m.last_step, m.step_time_s = last.step, last.step_time_s
        losses = [s.train_loss for s in steps if s.train_loss is not None]
        m.first_loss, m.final_loss = (losses[0], losses[-1]) if losses else (None, None)
        m.last_val_loss = parsed.last_val_loss  # progress val_loss or validation lines, never test loss
        times = [s.step_time_s for s in steps if s.step > 0 and s.step_time_s is not None
                 and s.step_time_s > 0]
        if times:
            m.median_step_time_s = statistics.median(times)
            m.mean_step_time_s = statistics.fmean(times)
    if memory:
        first = memory[min(memory)]
        m.peak_mem_mib, m.avg_mem_mib, m.mode_mem_mib = first.peak_mib, first.avg_mib, first.mode_mib
        m.all_peak_mem_mib = max(s.peak_mib for s in memory.values())
    m.restarts = len(parsed.restarts)
    m.restart_time_lost_s = parsed.restart_time_lost_s if parsed.restarts else None
    m.restart_events = [asdict(r) for r in parsed.restarts]
    for key, value in steady_metrics(parsed, gpus, seq_length, global_batch_size, wall_clock_s).items():
        setattr(m, key, value)
    return m


def hhmmss(seconds: float | None) -> str | None:
    """Return ``seconds`` as the workshop's ``HH:MM:SS`` (None stays None)."""
    if seconds is None or pd.isna(seconds):
        return None
    s = int(round(seconds))
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def add_scaling(rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """Return ``rows`` as a frame with batch_per_gpu, time_scaling and mem_scaling added.

    Per (model, track, workload, device) group the baseline B is the smallest GPU count
    among completed cells; time scaling = wall_B / wall_N, memory scaling = peak_B / peak_N.
    """
    df = pd.DataFrame(list(rows))
    if df.empty:
        return df
    for col in NUMERIC:
        if col in df:
            df[col] = pd.to_numeric(df[col], errors="coerce").astype(float)
    df["batch_per_gpu"] = df["global_batch_size"] / df["dp"]
    df["baseline_gpus"] = pd.NA
    for col in ("time_scaling", "mem_scaling", "speedup", "parallel_efficiency"):
        df[col] = float("nan")
    for col in ("steady_median_step_time_s", "tokens_per_s_per_gpu"):
        if col not in df:
            df[col] = float("nan")
    # throughput-based speedup: steady-state median step time (falls back to the plain median)
    df["_step"] = df["steady_median_step_time_s"].fillna(df["median_step_time_s"])
    for _, idx in df.groupby(GROUP_KEYS, dropna=False).groups.items():
        group = df.loc[idx]
        done = group[group["status"] == CellStatus.COMPLETED]
        if done.empty:
            continue
        base = done.loc[done["gpus"].idxmin()]
        df.loc[idx, "baseline_gpus"] = int(base["gpus"])
        ok = df.loc[idx, "status"] == CellStatus.COMPLETED
        sel = ok[ok].index
        df.loc[sel, "time_scaling"] = base["wall_clock_s"] / df.loc[sel, "wall_clock_s"]
        df.loc[sel, "mem_scaling"] = base["peak_mem_mib"] / df.loc[sel, "peak_mem_mib"]
        samples = df.loc[sel, "global_batch_size"] / df.loc[sel, "_step"]
        base_samples = base["global_batch_size"] / (base["_step"] if base["_step"] == base["_step"] else float("nan"))
        df.loc[sel, "speedup"] = samples / base_samples
        df.loc[sel, "parallel_efficiency"] = df.loc[sel, "speedup"] * base["gpus"] / df.loc[sel, "gpus"]
    df = df.drop(columns="_step")
    return df.sort_values(GROUP_KEYS + ["gpus", "tp", "ep"]).reset_index(drop=True)


def workshop_columns(baseline_gpus: int) -> list[str]:
    """Return the workshop's column names with the real baseline GPU count in the scaling headers."""
    return [c.format(b=baseline_gpus) for c in WORKSHOP_COLUMNS]


def workshop_table(group: pd.DataFrame) -> pd.DataFrame:
    """Return the completed cells of one (model, track) group in the workshop's columns (+ TP/EP/SP
    for model parallel); scaling headers name the group's baseline ("vs 1 GPU")."""
    group = group[group["status"] == CellStatus.COMPLETED]
    b = int(group["baseline_gpus"].dropna().iloc[0]) if group["baseline_gpus"].notna().any() else 1
    layout = {}
    if (group["track"] == "model_parallel").any():
        layout = {"TP": group["tp"], "EP": group["ep"], "SP": group["sp"].map(lambda v: "on" if v else "off")}
    out = pd.DataFrame({
        "GPUs": group["gpus"],
        **layout_columns(group),
        **layout,
        "Batch per GPU": group["batch_per_gpu"],
        "Total job time (HH:MM:SS)": group["wall_clock_s"].map(hhmmss),
        "Train step time (s)": group["step_time_s"],
        "Last reduced_train_loss": group["final_loss"],
        "GPU 0 Peak (MiB)": group["peak_mem_mib"],
        "GPU 0 Avg (MiB)": group["avg_mem_mib"].round(2),
        "GPU 0 Mode (MiB)": group["mode_mem_mib"],
        f"Time scaling vs {b} GPU": group["time_scaling"].round(3),
        f"Peak memory scaling vs {b} GPU": group["mem_scaling"].round(3),
        f"Speedup vs {b} GPU (throughput)": group["speedup"].round(3),
        "Parallel efficiency": group["parallel_efficiency"].round(3),
        "Tokens/s/GPU": group["tokens_per_s_per_gpu"].round(1),
        "Model TFLOPs/GPU": group["model_tflops_per_gpu"].round(1),
        "MFU": group["mfu"].round(3),
    })
    return out.reset_index(drop=True)


def layout_columns(group: pd.DataFrame) -> dict[str, pd.Series]:
    """Return the layout columns a table needs to tell its rows apart: nodes x GPUs, PP, CP, ETP and VP,
    each only when some cell of ``group`` sets it (the workshop's own tables have none of them)."""
    out: dict[str, pd.Series] = {}
    nodes = group["nodes"] if "nodes" in group else pd.Series(1, index=group.index)
    if (nodes.fillna(1) > 1).any():
        out["Nodes x GPUs"] = [f"{int(n)}x{int(g) // int(n)}" for n, g in zip(nodes.fillna(1), group["gpus"],
                                                                                 strict=True)]
    for column, title, default in (("pp", "PP", 1), ("cp", "CP", 1), ("etp", "ETP", None), ("vp", "VP", None)):
        values = group[column] if column in group else pd.Series(default, index=group.index)
        if (values.notna() & (values != default)).any() if default is not None else values.notna().any():
            out[title] = values.astype(object).where(values.notna(), "-")
    return out


def scaling_tables(rows: Iterable[dict[str, Any]]) -> dict[tuple[str, ...], pd.DataFrame]:
    """Return the workshop tables of completed cells keyed by (model, track, workload, device).

    Failed, cancelled or partial cells are never rows here (their numbers would pass for
    measurements); reports list them separately.
    """
    df = add_scaling(rows)
    if df.empty:
        return {}
    eff = [efficiency(rec) for rec in df.to_dict("records")]
    for col in ("model_tflops_per_gpu", "mfu"):
        df[col] = pd.to_numeric(pd.Series([e[col] for e in eff], index=df.index), errors="coerce").astype(float)
    return {tuple(str(k) for k in key): workshop_table(g)
            for key, g in df.groupby(GROUP_KEYS, dropna=False, sort=True) if (g["status"] == CellStatus.COMPLETED).any()}
