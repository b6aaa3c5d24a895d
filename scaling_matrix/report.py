"""Report rows and renderings (json, csv, markdown) of a run's results. Pure."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd

from scaling_matrix.analysis import add_scaling, scaling_tables
from scaling_matrix.efficiency import efficiency, yardstick_rows, yardstick_table
from scaling_matrix.flops import DEFAULT_CONVENTION, FlopConvention
from scaling_matrix.yardstick import DEFAULT_THRESHOLD
from scaling_matrix.records import CellStatus

#: Columns of the JSON/CSV report, in order.
REPORT_COLUMNS = [
    "run_id", "cell_id", "model", "track", "gpus", "nodes", "devices_per_node", "tp", "pp", "cp", "ep", "etp",
    "vp", "sp", "dp",
    "peft", "global_batch_size", "batch_per_gpu", "status", "failure_class", "reason", "attempts",
    "step_time_s", "median_step_time_s", "mean_step_time_s", "wall_clock_s", "first_loss",
    "final_loss", "last_val_loss", "peak_mem_mib", "avg_mem_mib", "mode_mem_mib", "all_peak_mem_mib",
    "baseline_gpus", "time_scaling", "mem_scaling", "speedup", "parallel_efficiency",
    "steady_median_step_time_s", "tokens_per_s_per_gpu", "gpu_hours", "workload", "device", "cluster",
    "restarts", "restart_time_lost_s",
    # efficiency and the published yardstick (scaling_matrix.efficiency, .yardstick)
    "seq_length", "gpu_type", "precision", "library", "model_tflops_per_gpu", "mfu", "flops_convention",
    "reference_id", "reference_tokens_per_s_per_gpu", "reference_ratio", "reference_verdict",
]


def _clean(value: Any) -> Any:
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):  # numpy scalar
        return _clean(value.item())
    return value


def report_rows(cells: Iterable[dict[str, Any]], convention: FlopConvention = DEFAULT_CONVENTION,
                threshold: float = DEFAULT_THRESHOLD) -> list[dict[str, Any]]:
    """Return one JSON-ready dict per cell with scaling, efficiency and yardstick columns (NaN → None)."""
    df = add_scaling(cells)
    if df.empty:
        return []
    records = df.to_dict("records")
    marks = {y["cell_id"]: y for y in yardstick_rows(records, threshold)}
    out = []
    for rec in records:
        y = marks[str(rec["cell_id"])]
        rec = {**rec, **efficiency(rec, convention), "reference_id": y["reference_id"],
               "reference_tokens_per_s_per_gpu": y["reference_tokens_per_s_per_gpu"],
               "reference_ratio": y["ratio"], "reference_verdict": y["verdict"]}
        out.append({c: _clean(rec.get(c)) for c in REPORT_COLUMNS})
    return out


def render_json(rows: Sequence[dict[str, Any]]) -> str:
    """Return ``rows`` as pretty JSON (a list of objects)."""
    return json.dumps(list(rows), indent=2, default=str)


def render_csv(rows: Sequence[dict[str, Any]]) -> str:
    """Return ``rows`` as CSV with the report columns."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=REPORT_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def markdown_table(df: pd.DataFrame) -> str:
    """Return ``df`` as a GitHub-flavoured markdown table (None/NaN shown as '–')."""
    def cell(v: Any) -> str:
        v = _clean(v)
        if v is None:
            return "–"
        return f"{v:.4g}" if isinstance(v, float) else str(v)
    head = "| " + " | ".join(map(str, df.columns)) + " |"
    sep = "|" + "|".join("---" for _ in df.columns) + "|"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([head, sep, *body])


def table_title(key: tuple[str, ...]) -> str:
    """Return a heading for one (model, track, workload, device) table."""
    model, track, workload, device = key
    return f"{model} — {track.replace('_', ' ')} (workload={workload}, device={device})"


def progress(cell: dict[str, Any]) -> str:
    """Return how far a cell got: 'no step logged', 'partial: step 7 of 40' or 'all 40 steps'."""
    last, total = cell.get("last_step"), cell.get("max_steps")
    if last is None:
        return "no step logged"
    if total and cell.get("reached_last_step"):
        return f"all {total} steps"
    return f"partial: step {last}" + (f" of {total}" if total else "")


def incomplete_cells(cells: Iterable[dict[str, Any]]) -> list[str]:
    """Return one line per cell that did not complete (status, class, progress, reason)."""
    return [f"{c['status']}: {c['cell_id']} ({c.get('failure_class') or '–'}, {progress(c)}) "
            f"{(c.get('reason') or '')[:200]}".rstrip() for c in cells if c.get("status") != CellStatus.COMPLETED]


def render_markdown(cells: Iterable[dict[str, Any]], run_id: str | None = None) -> str:
    """Return the workshop scaling tables of ``cells`` as a markdown document.

    Tables and scaling ratios hold completed cells only; failed, cancelled and partial cells are
    listed after them with how far they got.
    """
    cells = list(cells)
    lines = [f"# Scaling results{f' — run {run_id}' if run_id else ''}", ""]
    for key, table in scaling_tables(cells).items():
        lines += [f"## {table_title(key)}", "", markdown_table(table), ""]
    failed = [c for c in cells if c.get("status") != CellStatus.COMPLETED]
    if failed:
        lines += ["## Cells that did not complete (not in the tables or ratios)", "",
                  "| cell | status | class | progress | reason |", "|---|---|---|---|---|"]
        lines += [f"| {c['cell_id']} | {c['status']} | {c.get('failure_class') or '–'} | {progress(c)} | "
                  f"{(c.get('reason') or '').replace('|', '/')[:200]} |" for c in failed]
    lines += restart_section(cells)
    lines += yardstick_section(cells)
    if any(c.get("workload") == "tiny" for c in cells):
        lines += ["", "_workload=tiny: embedded CPU engine; memory is per-rank process RSS, "
                  "not GPU memory. Not comparable with GPU results._"]
    return "\n".join(lines) + "\n"


def restart_section(cells: Iterable[dict[str, Any]]) -> list[str]:
    """Return the markdown lines listing cells with in-job restarts (none: no lines)."""
    hit = [c for c in cells if (c.get("restarts") or 0) > 0]
    if not hit:
        return []
    out = ["## In-job restarts", "", "| cell | restarts | at steps (after → resumed) | step time lost (s) |",
           "|---|---|---|---|"]
    for c in hit:
        steps = ", ".join(f"{e.get('after_step')}→{e.get('resumed_at')}" for e in c.get("restart_events") or [])
        lost = c.get("restart_time_lost_s")
        out.append(f"| {c['cell_id']} | {c['restarts']} | {steps or '–'} | {'–' if lost is None else f'{lost:.4g}'} |")
    return [*out, ""]


def yardstick_section(cells: Iterable[dict[str, Any]], threshold: float = DEFAULT_THRESHOLD) -> list[str]:
    """Return the markdown lines putting each completed cell next to its published reference."""
    done = [c for c in cells if c.get("status") == "completed"]
    if not done:
        return []
    table = yardstick_table(yardstick_rows(done, threshold))
    lines = ["## Published yardstick (tokens/s per GPU)", "",
             f"_Ours vs NVIDIA's published number for the same workload, GPU type, precision, model, method and "
             f"sequence length; flagged below {threshold:.0%}. Sources: scaling_matrix/data/published_references.json._",
             "", "| " + " | ".join(table[0]) + " |", "|" + "---|" * len(table[0])]
    lines += ["| " + " | ".join(str(v if v is not None else "–").replace("|", "/") for v in row.values()) + " |"
              for row in table]
    return [*lines, ""]
