"""``scaling-matrix parse-log PATH``: parse one training log and print its summary (or one JSON object);
``scan-logs PATHS...``: summarise many NeMo 2 logs with the bulk scanner."""

from __future__ import annotations

import json as jsonlib
import time
from collections import Counter
from dataclasses import asdict
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from scaling_matrix.metrics import step_stats
from scaling_matrix.parsing.progress import parse_file
from scaling_matrix.parsing.summary import human_summary, log_summary


class LogFormatChoice(StrEnum):
    """Log formats ``parse-log`` understands (``auto`` detects them)."""

    auto = "auto"
    nemo = "nemo"
    automodel = "automodel"
    megatron = "megatron"


def parse_log(path: Annotated[Path, typer.Argument(help="log file (NeMo 2, AutoModel text/training.jsonl, "
                                                        "Megatron-LM)")],
              format: Annotated[LogFormatChoice, typer.Option("--format", "-f", help="log format")]
              = LogFormatChoice.auto,
              json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False) -> None:
    """Parse a training log: steps, step times, losses, memory, completion, failure class, problems."""
    if not path.is_file():
        typer.echo(f"error: {path}: no such file (fix: pass the path of a training log)", err=True)
        raise typer.Exit(2)
    try:
        parsed = parse_file(path, format.value)
    except OSError as exc:
        typer.echo(f"error: cannot read {path}: {exc}", err=True)
        raise typer.Exit(2) from exc
    stats = step_stats(parsed.steps)
    summary = {"path": str(path), **log_summary(parsed), "steady_state": asdict(stats) if stats else None}
    if json:
        typer.echo(jsonlib.dumps(summary, allow_nan=False))
    else:
        typer.echo(f"{path}\n" + human_summary(summary))


def _log_files(paths: list[Path], patterns: list[str]) -> list[Path]:
    """Return the files named in ``paths`` and, for each directory there, its files matching ``patterns``
    (recursively), sorted and without repeats; exit 2 naming a missing path."""
    found: dict[Path, None] = {}
    for path in paths:
        if path.is_dir():
            for match in sorted({m for pattern in patterns for m in path.rglob(pattern) if m.is_file()}):
                found[match] = None
        elif path.is_file():
            found[path] = None
        else:
            typer.echo(f"error: {path}: no such file or directory (fix: pass log files or folders of logs)",
                       err=True)
            raise typer.Exit(2)
    return list(found)


def scan_logs(paths: Annotated[list[Path], typer.Argument(help="NeMo 2 logs, or folders searched recursively")],
              glob: Annotated[list[str], typer.Option("--glob", help="file patterns inside folders (repeatable)")]
              = ["*.log", "*.out"],  # noqa: B006 (typer needs a list default)
              threads: Annotated[int | None, typer.Option(min=1, help="scanner threads (default: CPUs, at most 8)")]
              = None,
              json: Annotated[bool, typer.Option("--json", help="print one JSON object per log (JSON lines)")]
              = False) -> None:
    """Summarise many NeMo 2 logs fast (steps, step times, losses, completion, failure class) with the bulk
    scanner; use ``parse-log`` for one log's full record (memory, TFLOPS, problems, steady state)."""
    from scaling_matrix.parsing.bulk import available, parse_files_bulk

    files = _log_files(paths, glob)
    start = time.perf_counter()
    summaries = parse_files_bulk(files, threads=threads)
    seconds = time.perf_counter() - start
    if json:
        for path, summary in summaries.items():
            typer.echo(jsonlib.dumps({"path": str(path), **summary}, allow_nan=False))
        return
    size = sum(p.stat().st_size for p in files)
    failures = Counter(s["failure"] for s in summaries.values() if s["failure"])
    typer.echo(f"{len(files)} logs, {size / 2**20:.1f} MiB in {seconds:.2f} s "
               f"({'numba kernel' if available() else 'Python parser: install the extra fast for speed'})")
    typer.echo(f"steps: {sum(s['iterations'] for s in summaries.values())}; "
               f"completed: {sum(s['completed'] for s in summaries.values())}; "
               f"failed: {sum(failures.values())} {dict(failures) if failures else ''}".rstrip())
