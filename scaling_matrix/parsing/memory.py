"""Parse the GPU memory monitor CSV (nvidia-smi ``--format=csv[,nounits]``) and the tiny engine's CPU twin.

Columns: ``timestamp, index, name, memory.used [MiB], memory.total [MiB]``; values may carry
`` MiB`` units. Summaries follow the workshop's ``analyze_memory.py``: per index Peak = max,
Avg = mean, Mode = most frequent value (smallest on ties).
"""

from __future__ import annotations

import csv
import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field

HEADER = "timestamp, index, name, memory.used [MiB], memory.total [MiB]"


@dataclass(frozen=True)
class MemorySummary:
    """Peak / average / mode of one device's sampled memory, in MiB."""

    index: int
    name: str
    samples: int
    peak_mib: float
    avg_mib: float
    mode_mib: float
    total_mib: float | None


@dataclass
class MemoryLog:
    """Samples grouped by device index, plus problems met while reading."""

    used: dict[int, list[float]] = field(default_factory=dict)
    names: dict[int, str] = field(default_factory=dict)
    totals: dict[int, float] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def _mib(text: str) -> float | None:
    text = text.strip()
    for unit in (" MiB", "MiB"):
        if text.endswith(unit):
            text = text[: -len(unit)]
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


#: column name prefix -> field, for headers in any order (the READMEs' query adds utilization.gpu)
COLUMNS = {"index": "index", "name": "name", "memory.used": "used", "memory.total": "total"}
_DEFAULT_LAYOUT = {"index": 1, "name": 2, "used": 3, "total": 4}


def column_layout(header: list[str]) -> dict[str, int]:
    """Return field -> column index for a CSV header row (the workshop layout for missing names)."""
    layout = dict(_DEFAULT_LAYOUT)
    named = {}
    for i, cell in enumerate(header):
        key = cell.strip().lower().split(" [")[0]
        if key in COLUMNS:
            named[COLUMNS[key]] = i
    if "used" in named:
        layout = {k: named.get(k, -1) for k in _DEFAULT_LAYOUT}
    return layout


def _cell(row: list[str], i: int) -> str:
    return row[i] if 0 <= i < len(row) else ""


def parse_memory_rows(lines: Iterable[str], into: MemoryLog | None = None) -> MemoryLog:
    """Return ``into`` (or a new log) with the samples of one CSV's lines added.

    The header row (``timestamp, ...``), when present, decides the columns, so both the scripts'
    ``timestamp,index,name,memory.used,memory.total`` and the READMEs'
    ``timestamp,index,utilization.gpu,memory.used,memory.total`` queries work, with or without units.
    """
    log = into or MemoryLog()
    layout = dict(_DEFAULT_LAYOUT)
    for lineno, row in enumerate(csv.reader(lines), 1):
        if not row:
            continue
        if row[0].strip().lower() == "timestamp":
            layout = column_layout(row)
            continue
        if len(row) <= max(layout["index"], layout["used"]):
            log.problems.append(f"row {lineno}: expected {max(layout.values()) + 1} columns, got {len(row)}")
            continue
        try:  # a query without an index column (one GPU) counts as GPU 0
            index = int(_cell(row, layout["index"]).strip()) if layout["index"] >= 0 else 0
        except ValueError:
            log.problems.append(f"row {lineno}: bad index {_cell(row, layout['index'])!r}")
            continue
        used, total = _mib(_cell(row, layout["used"])), _mib(_cell(row, layout["total"]))
        if used is None:
            log.problems.append(f"row {lineno}: bad memory.used {_cell(row, layout['used'])!r}")
            continue
        log.used.setdefault(index, []).append(used)
        log.names.setdefault(index, _cell(row, layout["name"]).strip())
        if total is not None:
            log.totals[index] = total
    return log


def summarize(log: MemoryLog) -> dict[int, MemorySummary]:
    """Return per-index Peak/Avg/Mode summaries of ``log``."""
    out: dict[int, MemorySummary] = {}
    for index, values in sorted(log.used.items()):
        modes = statistics.multimode(values)
        out[index] = MemorySummary(index, log.names.get(index, ""), len(values), max(values),
                                   statistics.fmean(values), min(modes), log.totals.get(index))
    return out
