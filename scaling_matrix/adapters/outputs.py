"""Read a cell's outputs from disk: its logs and memory CSVs."""

from __future__ import annotations

from pathlib import Path

from scaling_matrix.parsing.memory import MemoryLog, parse_memory_rows


def read_log_text(*paths: Path, limit_bytes: int = 256 * 1024 * 1024) -> str:
    """Return the concatenated text of the existing ``paths`` (undecodable bytes replaced)."""
    chunks = []
    for p in paths:
        if p.is_file():
            with open(p, "rb") as fh:
                chunks.append(fh.read(limit_bytes).decode("utf-8", errors="replace"))
    return "\n".join(chunks)


def read_memory_dir(directory: Path) -> MemoryLog:
    """Return the samples of every ``*.csv`` under ``directory`` (empty log when missing)."""
    log = MemoryLog()
    if not directory.is_dir():
        log.problems.append(f"memory directory {directory} not found")
        return log
    for csv_path in sorted(directory.glob("*.csv")):
        with open(csv_path, encoding="utf-8", errors="replace", newline="") as fh:
            parse_memory_rows(fh, into=log)
    return log
