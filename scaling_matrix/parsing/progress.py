"""Parse training logs (NeMo 2, NeMo AutoModel, Megatron-LM) into a :class:`ParsedLog`: the public entry points.

Format facts (reference/nemo.md §8): ``Training epoch E, iteration i/N-1 | key: value | ...``
printed by global rank 0; any prefix (``0: ``, ``exp/0 [default0]:``); keys in any order; values
``'{:.4}'`` formatted (exponents allowed) or ints; step timings may be negative; steps may repeat
after an in-job restart (the last occurrence wins); ``global_step`` is the step id (``i`` resets
at epoch rollover). The per-format rule tables live in :mod:`scaling_matrix.parsing.formats`,
the streaming engine in :mod:`scaling_matrix.parsing.engine`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from scaling_matrix.parsing.engine import LogBuilder, chunks_from_lines, iter_chunks
from scaling_matrix.parsing.formats import NEMO_PAIRS, NEMO_RULES
from scaling_matrix.parsing.model import ParsedLog, ProgressRecord
from scaling_matrix.parsing.rules import apply_rule

__all__ = ["KEY_MAP", "ParsedLog", "ProgressRecord", "parse_file", "parse_lines", "parse_progress_line",
           "parse_stream", "parse_text"]


#: progress-line key -> ProgressRecord attribute (NeMo 2)
KEY_MAP: dict[str, str] = {key.decode(): cols[0].attr for key, cols in NEMO_PAIRS.items()}

_NEMO_STEP = NEMO_RULES[0]


def parse_progress_line(line: str, lineno: int = 0) -> ProgressRecord | None:
    """Return the record of one NeMo 2 progress line, or None when ``line`` is not one."""
    values = apply_rule(_NEMO_STEP, line.encode("utf-8", "replace"))
    if values is None:
        return None
    epoch, it, n = values.pop("epoch"), values.pop("iteration"), values.pop("max_iteration")
    rec = ProgressRecord(int(epoch or 0), int(it or 0), int(n or 0), lineno)
    rec.__dict__.update(values)
    return rec


def parse_lines(lines: Iterable[str | bytes], format: str = "auto",
                expected_max_steps: int | None = None) -> ParsedLog:
    """Return the parsed log of ``lines``: unique global steps (last occurrence kept), in order.

    Args:
        lines: the log's lines (with or without line ends); line numbers count from 1.
        format: ``auto`` (detected from the first lines that show one), ``nemo``,
            ``automodel`` (text log or ``training.jsonl``), ``megatron`` or ``nemo1``.
        expected_max_steps: the cell's ``max_steps``, used when the log prints none (AutoModel).
    """
    builder = LogBuilder(format, expected_max_steps)
    for chunk in chunks_from_lines(lines):
        builder.feed(chunk)
    return builder.finish()


def parse_text(text: str, format: str = "auto", expected_max_steps: int | None = None) -> ParsedLog:
    """Return the parsed log of a whole text (thin wrapper over :func:`parse_lines`)."""
    return parse_lines(text.splitlines(), format, expected_max_steps)


def parse_stream(stream: BinaryIO, format: str = "auto", expected_max_steps: int | None = None) -> ParsedLog:
    """Return the parsed log of a binary stream, read in large line-aligned chunks (never whole)."""
    builder = LogBuilder(format, expected_max_steps)
    for chunk in iter_chunks(stream):
        builder.feed(chunk)
    return builder.finish()


def parse_file(path: str | Path, format: str = "auto", expected_max_steps: int | None = None) -> ParsedLog:
    """Return the parsed log of the file at ``path`` (streamed; see :func:`parse_stream`)."""
    with open(path, "rb") as fh:
        return parse_stream(fh, format, expected_max_steps)
