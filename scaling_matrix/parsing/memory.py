"""Parse the GPU memory monitor CSV (nvidia-smi ``--format=csv[,nounits]``) and the tiny engine's CPU twin.

Columns: ``timestamp, index, name, memory.used [MiB], memory.total [MiB]``; values may carry
`` MiB`` units. Summaries follow the workshop's ``analyze_memory.py``: per index Peak = max,
Avg = mean, Mode = most frequent value (smallest on ties).
"""

from __future__ import annotations

import csv
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
        return float(text)
    except ValueError:
        return None


def parse_memory_rows(lines: Iterable[str], into: MemoryLog | None = None) -> MemoryLog:
    """Return ``into`` (or a new log) with the samples of one CSV's lines added."""
    log = into or MemoryLog()
    for lineno, row in enumerate(csv.reader(lines), 1):
        if not row or row[0].strip().lower() == "timestamp":
            continue
        if len(row) < 5:
            log.problems.append(f"row {lineno}: expected 5 columns, got {len(row)}")
            continue
        try:
            index = int(row[1].strip())
        except ValueError:
            log.problems.append(f"row {lineno}: bad index {row[1]!r}")
            continue
        used, total = _mib(row[3]), _mib(row[4])
        if used is None:
            log.problems.append(f"row {lineno}: bad memory.used {row[3]!r}")
            continue
        log.used.setdefault(index, []).append(used)
        log.names.setdefault(index, row[2].strip())
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
