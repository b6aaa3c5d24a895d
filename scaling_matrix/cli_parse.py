"""``scaling-matrix parse-log PATH``: parse one training log and print its summary (or one JSON object)."""

from __future__ import annotations

import json as jsonlib
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
