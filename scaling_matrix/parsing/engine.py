"""Streaming engine: line-aligned byte chunks in, one :class:`ParsedLog` out. Never raises on garbage.

Each chunk is scanned once per rule of the log's format: ``bytes.find(rule.marker)`` locates the
lines cheaply and only those lines meet the rule's regex (so noise costs almost nothing). Rules
with region ``head``/``tail`` look at the first/last 64 KiB only (the job footer). Failure
signatures are collected over the whole log (:mod:`~scaling_matrix.parsing.failures`) and judged
at the end against the last progress line and completion. Steps are keyed by their global step;
a repeated step replaces the earlier one and is recorded as an in-job restart
(:mod:`~scaling_matrix.parsing.restarts`). A log whose first line is an nvidia-smi CSV header is
read as GPU memory samples (:mod:`~scaling_matrix.parsing.smi`).
"""

from __future__ import annotations

from collections.abc import Callable

from scaling_matrix.errors import ConfigError
from scaling_matrix.parsing import failures
from scaling_matrix.parsing.chunks import CHUNK_BYTES, chunks_from_lines, derive_step_times, iter_chunks
from scaling_matrix.parsing.formats import FORMATS, LogFormat, Rule
from scaling_matrix.parsing.jsonl import parse_jsonl_row
from scaling_matrix.parsing.model import ParsedLog, ProgressRecord, ValRecord
from scaling_matrix.parsing.restarts import RestartTracker
from scaling_matrix.parsing.rules import Value, apply_match, apply_rule
from scaling_matrix.parsing.smi import SmiCsv

HEAD_BYTES = TAIL_BYTES = 64 * 1024
MAX_PROBLEMS = 200
FORMAT_CHOICES = ("auto", "nemo", "automodel", "megatron", "nemo1")
UNBOUNDED_STEPS = 2**63 - 1  # AutoModel prints sys.maxsize as "Max train steps" when nothing bounds it


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

    def __init__(self, format: str = "auto", expected_max_steps: int | None = None) -> None:
        """``expected_max_steps``: the cell's ``max_steps`` (context for logs that print none, e.g. AutoModel)."""
        if format not in FORMAT_CHOICES:
            raise ConfigError("format", f"unknown log format {format!r}", "use " + ", ".join(FORMAT_CHOICES))
        self.requested = format
        self.expected_max_steps = expected_max_steps
        self.fmt: LogFormat | None = None if format == "auto" else FORMATS[format]
        self.jsonl = False
        self.smi: SmiCsv | None = None
        self._decided = format in ("nemo", "megatron", "nemo1")
        self.out = ParsedLog()
        self.restarts = RestartTracker()
        self._sigs = failures.Collector()
        self._base = self._line_pos = 0
        self.by_step: dict[int, ProgressRecord] = {}
        self.next_lineno = 1
        self.offset = 0
        self.tail = b""
        self._val_prev_k: int | None = None
        self._dropped = 0
        self._handlers: dict[str, Callable[[dict[str, Value], int], None]] = {
            "step": self._on_step, "validation": self._on_validation, "stopped": self._on_stopped,
            "val": self._on_val, "memory": self._on_memory, "start": self._on_footer,
            "end": self._on_footer, "total": self._on_footer, "restart": self._on_restart,
            "max_steps": self._on_max_steps, "end_marker": self._on_end_marker, "early_exit": self._on_early_exit,
        }

    # --- feeding ---------------------------------------------------------------------------
    def feed(self, chunk: bytes) -> None:
        """Parse one line-aligned chunk."""
        if not chunk:
            return
        if self.offset == 0 and SmiCsv.sniff(chunk):
            self.smi, self._decided = SmiCsv(), True
        if not self._decided:
            self._detect(chunk)
        if self.smi is not None:
            self.smi.feed(chunk)
        elif self.jsonl:
            self._feed_jsonl(chunk)
        else:
            self._feed_text(chunk)
        self.restarts.flush(self.out.step_counter_global)
        self.offset += len(chunk)
        self.next_lineno += chunk.count(b"\n")
        self.tail = chunk[-TAIL_BYTES:] if len(chunk) >= TAIL_BYTES else (self.tail + chunk)[-TAIL_BYTES:]

    def _feed_text(self, chunk: bytes) -> None:
        """Apply the format's rules and collect the failure signatures of one chunk."""
        self._base = self.offset
        fmt = self.fmt or FORMATS["nemo"]
        for rule in fmt.rules:
            if rule.region == "all":
                self._scan(rule, chunk, self.next_lineno)
            elif rule.region == "head" and self.offset < HEAD_BYTES:
                end = chunk.find(b"\n", HEAD_BYTES - self.offset)
                self._scan(rule, chunk[: end if end >= 0 else None], self.next_lineno)
        self._sigs.feed(chunk, self.offset, self.next_lineno)

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
            pos, nxt = i, e
            if rule.anchored:  # no exclude for anchored rules: the line is the marker's from here on
                m = regex.match(data, i, e)
                cut = find(marker, m.end(), e) if m is not None and rule.repeat else -1
                nxt = cut if cut >= 0 else e
                values = None if m is None else apply_match(rule, m, data[m.end():nxt])
            else:
                line = data[data.rfind(b"\n", 0, i) + 1:e]
                if exclude is not None and exclude in line:
                    i = find(marker, e)
                    continue
                values = apply_rule(rule, line)
            if values is not None:
                self._line_pos = self._base + data.rfind(b"\n", 0, i) + 1
                handler(values, lineno)
            elif rule.name == "step":
                self._problem(lineno, "unparseable progress line")
            i = find(marker, nxt)

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
        out, step = self.out, rec.step
        if rec.global_step is None and (self.fmt is None or self.fmt.name == "nemo") and not self.jsonl:
            out.step_counter_global = False  # NeMo without global_step: the iteration restarts every epoch
        self.restarts.queue(rec.lineno, rec)
        if step in self.by_step:
            self._problem(rec.lineno, f"step {step} repeated; keeping the last")
        self.by_step[step] = rec
        out.progress_lines += 1
        out.first_logged_step = step if out.first_logged_step is None else out.first_logged_step
        out.last_logged_step, out.last_progress_pos = step, self._line_pos
        if rec.step_time_s is not None:
            out.logged_time_sum_s += rec.step_time_s
            out.logged_time_count += 1
        if rec.max_iteration is not None:
            n = rec.max_iteration + (self.fmt or FORMATS["nemo"]).denominator_offset
            out.max_steps = n if rec.epoch == 0 or out.max_steps is None else out.max_steps
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
        loss, step, split = values.get("loss"), values.get("step"), values.get("split")
        if isinstance(loss, float):
            self.out.validations.append(ValRecord(step if isinstance(step, int) else None, loss, lineno,
                                                  "test" if split == "test" else "val"))

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

    def _on_restart(self, values: dict[str, Value], lineno: int) -> None:
        self.restarts.queue(lineno, f"restart_count={values['n']}" if "n" in values
                            else "Worker group FAILED; will restart worker group")

    def _on_max_steps(self, values: dict[str, Value], lineno: int) -> None:
        n = values.get("n")
        if isinstance(n, int) and 0 < n < UNBOUNDED_STEPS:
            self.out.max_steps = n

    def _on_end_marker(self, values: dict[str, Value], lineno: int) -> None:
        self.out.end_marker_line = lineno

    def _on_early_exit(self, values: dict[str, Value], lineno: int) -> None:
        self.out.early_exit_line = lineno

    # --- the end ---------------------------------------------------------------------------
    def finish(self) -> ParsedLog:
        """Return the parsed log: tail rules, steps in order, restarts, and the failure judgement."""
        out = self.out
        tail = self.tail if self.offset <= TAIL_BYTES else self.tail[self.tail.find(b"\n") + 1:]
        if not self.jsonl and self.smi is None:
            for rule in (self.fmt or FORMATS["nemo"]).rules:
                if rule.region == "tail":
                    self._scan(rule, tail, self.next_lineno - tail.count(b"\n"))
        out.steps = [self.by_step[k] for k in sorted(self.by_step)]
        derive_step_times(out.steps)
        out.restarts = self.restarts.finish()
        fmt = self.fmt or (FORMATS["nemo"] if out.steps else None)
        if fmt is not None:
            out.format, out.first_step = fmt.name, fmt.first_step
        if out.max_steps is None and self.expected_max_steps:
            out.max_steps = self.expected_max_steps  # the cell's own max_steps (AutoModel prints none)
        if self.smi is not None:
            self.smi.finish(out)
        self._judge(out)
        out.lines = self.next_lineno - 1 + (0 if not self.tail or self.tail.endswith(b"\n") else 1)
        if not out.steps and self.smi is None:
            self._problem(out.lines, "no training progress lines found")
        elif out.steps and out.max_steps is None and not out.reached_last_step:
            self._problem(out.lines, "no max_steps in the log (no /N denominator): completion cannot be confirmed")
        if self._dropped:
            out.problems.append(f"{self._dropped} more problems not listed")
        return out

    def _judge(self, out: ParsedLog) -> None:
        """Set the failure of ``out`` from its signatures, last progress line and completion."""
        verdict = failures.judge(self._sigs.signatures, out.last_progress_pos, out.reached_last_step)
        out.signatures = list(verdict.signatures)
        if verdict.failure is not None:
            f = verdict.failure
            out.failure = out.failure_signature = f.klass
            out.failure_line, out.failure_lineno = f.line, f.lineno


__all__ = ["CHUNK_BYTES", "FORMAT_CHOICES", "LogBuilder", "chunks_from_lines", "detect_format", "iter_chunks"]
