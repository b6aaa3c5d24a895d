"""Streaming engine: line-aligned byte chunks in, one :class:`ParsedLog` out. Never raises on garbage.

Each chunk is scanned once per rule of the log's format: ``bytes.find(rule.marker)`` locates the
lines cheaply and only those lines meet the rule's regex (so noise costs almost nothing). Rules
with region ``head``/``tail`` look at the first/last 64 KiB only (footer, failure signatures).
Steps are keyed by their global step; a repeated step (in-job restart, late flush) replaces the
earlier one and is reported as a problem.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import BinaryIO

from scaling_matrix.errors import ConfigError
from scaling_matrix.parsing.failures import TAIL_BYTES, find_failure
from scaling_matrix.parsing.formats import FORMATS, LogFormat, Rule
from scaling_matrix.parsing.jsonl import parse_jsonl_row
from scaling_matrix.parsing.model import ParsedLog, ProgressRecord, ValRecord
from scaling_matrix.parsing.rules import Value, apply_match, apply_rule

CHUNK_BYTES = 8 << 20
HEAD_BYTES = 64 * 1024
MAX_PROBLEMS = 200
FORMAT_CHOICES = ("auto", "nemo", "automodel", "megatron")


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


def _first_match(chunk: bytes, rule: Rule, tries: int = 20) -> int | None:
    """Return the offset of the first line of ``chunk`` that ``rule`` accepts (looking at ``tries`` lines)."""
    i = chunk.find(rule.marker)
    while i >= 0 and tries > 0:
        s = chunk.rfind(b"\n", 0, i) + 1
        e = chunk.find(b"\n", i)
        line = chunk[s: e if e >= 0 else None]
        if (rule.exclude is None or rule.exclude not in line) and rule.regex.search(line):
            return s
        if e < 0:
            return None
        i, tries = chunk.find(rule.marker, e), tries - 1
    return None


def detect_format(chunk: bytes, at_start: bool = True) -> str | None:
    """Return ``"jsonl"`` (only for a chunk that starts the stream), or the format whose step line
    comes first in ``chunk``, or None."""
    head = chunk.lstrip()[:4096]
    if at_start and head.startswith(b"{") and b'"step"' in head:
        return "jsonl"
    hits = [(pos, name) for name, fmt in FORMATS.items()
            if (pos := _first_match(chunk, fmt.step_rule)) is not None]
    return min(hits)[1] if hits else None


class LogBuilder:
    """Accumulates one log, chunk by chunk (:meth:`feed`), into a :class:`ParsedLog` (:meth:`finish`)."""

    def __init__(self, format: str = "auto") -> None:
        if format not in FORMAT_CHOICES:
            raise ConfigError("format", f"unknown log format {format!r}", "use " + ", ".join(FORMAT_CHOICES))
        self.requested = format
        self.fmt: LogFormat | None = None if format == "auto" else FORMATS[format]
        self.jsonl = False
        self._decided = format in ("nemo", "megatron")
        self.out = ParsedLog()
        self.by_step: dict[int, ProgressRecord] = {}
        self.next_lineno = 1
        self.offset = 0
        self.tail = b""
        self._val_prev_k: int | None = None
        self._dropped = 0
        self._handlers: dict[str, Callable[[dict[str, Value], int], None]] = {
            "step": self._on_step, "validation": self._on_validation, "stopped": self._on_stopped,
            "val": self._on_val, "memory": self._on_memory, "start": self._on_footer,
            "end": self._on_footer, "total": self._on_footer,
        }

    # --- feeding ---------------------------------------------------------------------------
    def feed(self, chunk: bytes) -> None:
        """Parse one line-aligned chunk."""
        if not chunk:
            return
        if not self._decided:
            self._detect(chunk)
        if self.jsonl:
            self._feed_jsonl(chunk)
        else:
            fmt = self.fmt or FORMATS["nemo"]
            for rule in fmt.rules:
                if rule.region == "all":
                    self._scan(rule, chunk, self.next_lineno)
                elif rule.region == "head" and self.offset < HEAD_BYTES:
                    end = chunk.find(b"\n", HEAD_BYTES - self.offset)
                    self._scan(rule, chunk[: end if end >= 0 else None], self.next_lineno)
        self.offset += len(chunk)
        self.next_lineno += chunk.count(b"\n")
        self.tail = chunk[-TAIL_BYTES:] if len(chunk) >= TAIL_BYTES else (self.tail + chunk)[-TAIL_BYTES:]

    def _detect(self, chunk: bytes) -> None:
        """Decide the format from ``chunk`` when it shows one (undecided chunks parse as NeMo)."""
        found = detect_format(chunk, at_start=self.offset == 0)
        if found == "jsonl":
            self.jsonl, self.fmt, self._decided = True, FORMATS["automodel"], True
        elif found is not None and self.requested == "auto":
            self.fmt, self._decided = FORMATS[found], True
        elif self.requested != "auto":
            self._decided = True

    def _scan(self, rule: Rule, data: bytes, lineno: int) -> None:
        """Apply ``rule`` to every line of ``data`` containing its marker (``lineno``: first line's number)."""
        handler, count, find = self._handlers[rule.name], data.count, data.find
        marker, exclude, regex, pos = rule.marker, rule.exclude, rule.regex, 0
        i = find(marker)
        while i >= 0:
            e = find(b"\n", i)
            if e < 0:
                e = len(data)
            lineno += count(b"\n", pos, i)
            pos = i
            if rule.anchored:  # no exclude for anchored rules: the line is the marker's from here on
                m = regex.match(data, i, e)
                values = None if m is None else apply_match(rule, m, data[m.end():e])
            else:
                line = data[data.rfind(b"\n", 0, i) + 1:e]
                if exclude is not None and exclude in line:
                    i = find(marker, e)
                    continue
                values = apply_rule(rule, line)
            if values is not None:
                handler(values, lineno)
            elif rule.name == "step":
                self._problem(lineno, "unparseable progress line")
            i = find(marker, e)

    def _feed_jsonl(self, chunk: bytes) -> None:
        """Parse a chunk of JSONL rows (AutoModel ``training.jsonl`` / ``validation.jsonl``)."""
        for n, line in enumerate(chunk.split(b"\n"), self.next_lineno):
            if not line.strip():
                continue
            rec = parse_jsonl_row(line, n)
            if isinstance(rec, ProgressRecord):
                self._add_step(rec)
            elif isinstance(rec, ValRecord):
                self.out.validations.append(rec)
            else:
                self._problem(n, "not an AutoModel metrics row")

    # --- events ----------------------------------------------------------------------------
    def _problem(self, lineno: int, message: str) -> None:
        if len(self.out.problems) < MAX_PROBLEMS:
            self.out.problems.append(f"line {lineno}: {message}")
        else:
            self._dropped += 1

    def _on_step(self, values: dict[str, Value], lineno: int) -> None:
        epoch, it, n = values.pop("epoch", 0), values.pop("iteration", None), values.pop("max_iteration", None)
        if it is None:
            it = values.get("global_step", 0)
        rec = ProgressRecord(epoch if isinstance(epoch, int) else 0, it if isinstance(it, int) else 0,
                             n if isinstance(n, int) else None, lineno)
        rec.__dict__.update(values)  # keys are ProgressRecord attributes (the format tables' columns)
        self._add_step(rec)

    def _add_step(self, rec: ProgressRecord) -> None:
        step = rec.step
        if step in self.by_step:
            self._problem(rec.lineno, f"step {step} repeated; keeping the last")
        self.by_step[step] = rec
        if rec.max_iteration is not None:
            n = rec.max_iteration + (self.fmt or FORMATS["nemo"]).denominator_offset
            self.out.max_steps = n if rec.epoch == 0 or self.out.max_steps is None else self.out.max_steps
        if rec.step_time_s is not None and rec.step_time_s < 0:
            self._problem(rec.lineno, f"step {step} has a negative step time ({rec.step_time_s} s)")

    def _on_validation(self, values: dict[str, Value], lineno: int) -> None:
        k = values.get("k")
        if not isinstance(k, int):
            return
        if values.get("sanity"):
            self.out.sanity_iterations += 1
            return
        self.out.validation_iterations += 1
        if self._val_prev_k is None or k <= self._val_prev_k:
            self.out.validation_runs += 1
        self._val_prev_k = k

    def _on_stopped(self, values: dict[str, Value], lineno: int) -> None:
        n = values.get("n")
        if isinstance(n, int):
            self.out.stopped_at = n

    def _on_val(self, values: dict[str, Value], lineno: int) -> None:
        loss, step = values.get("loss"), values.get("step")
        if isinstance(loss, float):
            self.out.validations.append(ValRecord(step if isinstance(step, int) else None, loss, lineno))

    def _on_memory(self, values: dict[str, Value], lineno: int) -> None:
        peaks = self.out.memory_peaks
        for key in ("allocated", "max_allocated", "reserved", "max_reserved"):
            value = values.get(key)
            if isinstance(value, float):
                peaks[key] = max(value, peaks.get(key, value))

    def _on_footer(self, values: dict[str, Value], lineno: int) -> None:
        for key, value in values.items():
            if isinstance(value, float):
                setattr(self.out.footer, key, value)

    # --- the end ---------------------------------------------------------------------------
    def finish(self) -> ParsedLog:
        """Return the parsed log (tail rules and failure signatures are applied here)."""
        out = self.out
        tail = self.tail if self.offset <= TAIL_BYTES else self.tail[self.tail.find(b"\n") + 1:]
        tail_lineno = self.next_lineno - tail.count(b"\n")
        if not self.jsonl:
            for rule in (self.fmt or FORMATS["nemo"]).rules:
                if rule.region == "tail":
                    self._scan(rule, tail, tail_lineno)
        failure = find_failure(tail)
        if failure is not None:
            out.failure, out.failure_signature, out.failure_line = failure
        out.steps = [self.by_step[k] for k in sorted(self.by_step)]
        derive_step_times(out.steps)
        fmt = self.fmt or (FORMATS["nemo"] if out.steps else None)
        if fmt is not None:
            out.format, out.first_step = fmt.name, fmt.first_step
        out.lines = self.next_lineno - 1 + (0 if not self.tail or self.tail.endswith(b"\n") else 1)
        if not out.steps:
            self._problem(out.lines, "no training progress lines found")
        elif out.max_steps is None and out.stopped_at is None:
            self._problem(out.lines, "no max_steps in the log (no /N denominator): completion cannot be confirmed")
        if self._dropped:
            out.problems.append(f"{self._dropped} more problems not listed")
        return out


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
