"""Line-aligned byte chunks from streams or lines, and step times derived where the log prints none."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import BinaryIO

from scaling_matrix.parsing.model import ProgressRecord

CHUNK_BYTES = 8 << 20


def iter_chunks(stream: BinaryIO, size: int = CHUNK_BYTES) -> Iterator[bytes]:
    """Return an iterator of line-aligned chunks of ``stream`` (the last may lack its newline)."""
    rest = b""
    while True:
        block = stream.read(size)
        if not block:
            if rest:
                yield rest
            return
        block = rest + block if rest else block
        cut = block.rfind(b"\n") + 1
        if cut == 0:
            rest = block
            continue
        rest = block[cut:]
        yield block[:cut]


def chunks_from_lines(lines: Iterable[str | bytes], batch_bytes: int = 1 << 20) -> Iterator[bytes]:
    """Return an iterator of chunks joining ``lines`` (one per line, newlines inside a line become spaces)."""
    batch: list[bytes] = []
    size = 0
    for line in lines:
        raw = line if isinstance(line, bytes) else line.encode("utf-8", "replace")
        raw = raw.rstrip(b"\r\n").replace(b"\n", b" ")
        batch.append(raw)
        size += len(raw) + 1
        if size >= batch_bytes:
            yield b"\n".join(batch) + b"\n"
            batch, size = [], 0
    if batch:
        yield b"\n".join(batch) + b"\n"



def derive_step_times(steps: list[ProgressRecord]) -> None:
    """Fill missing step times: tokens per step / tokens per second, else timestamp deltas.

    Note: AutoModel's text log has no step time; the delta between consecutive log timestamps
    over the step delta is used (it includes logging overhead; the first step stays None).
    """
    prev: ProgressRecord | None = None
    for rec in steps:
        if rec.step_time_s is None:
            if rec.num_tokens_per_step and rec.tokens_per_s:
                rec.step_time_s = rec.num_tokens_per_step / rec.tokens_per_s
            elif (prev is not None and rec.timestamp_s is not None and prev.timestamp_s is not None
                  and rec.step > prev.step and rec.timestamp_s >= prev.timestamp_s):
                rec.step_time_s = (rec.timestamp_s - prev.timestamp_s) / (rec.step - prev.step)
        prev = rec
