"""Parse NeMo 2 training logs (progress lines, validation, end marker) into a :class:`ParsedLog`.

Format facts (reference/nemo.md §8): ``Training epoch E, iteration i/N-1 | key: value | ...``
printed by global rank 0; any prefix (``0: ``, ``exp/0 [default0]:``); keys in any order; values
``'{:.4}'`` formatted (exponents allowed) or ints; step timings may be negative; steps may repeat
after an in-job restart (the last occurrence wins); ``global_step`` is the step id (``i`` resets
at epoch rollover).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

PROGRESS_RE = re.compile(r"Training epoch (\d+), iteration (\d+)/(\d+)((?:\s*\|\s*[^|:]+:\s*[^|]*)*)")
PAIR_RE = re.compile(r"\|\s*([A-Za-z_][A-Za-z0-9_ ./-]*?)\s*:\s*([^|\s]+)")
STOPPED_RE = re.compile(r"`Trainer\.fit` stopped: `max_steps=(\d+)` reached")

#: progress-line key -> ProgressRecord attribute
KEY_MAP: dict[str, str] = {
    "lr": "lr",
    "global_batch_size": "global_batch_size",
    "global_step": "global_step",
    "reduced_train_loss": "train_loss",
    "train_step_timing in s": "step_time_s",
    "consumed_samples": "consumed_samples",
    "val_loss": "val_loss",
    "max_memory_reserved": "max_memory_reserved",
    "max_memory_allocated": "max_memory_allocated",
    "TFLOPS_per_GPU": "tflops_per_gpu",
}


@dataclass
class ProgressRecord:
    """One progress line: the values NeMo printed for one logged step."""

    epoch: int
    iteration: int
    max_iteration: int
    lineno: int
    global_step: int | None = None
    lr: float | None = None
    global_batch_size: float | None = None
    train_loss: float | None = None
    step_time_s: float | None = None
    consumed_samples: float | None = None
    val_loss: float | None = None
    max_memory_reserved: float | None = None
    max_memory_allocated: float | None = None
    tflops_per_gpu: float | None = None

    @property
    def step(self) -> int:
        """Return the global step (falls back to the iteration when not logged)."""
        return self.global_step if self.global_step is not None else self.iteration


@dataclass
class ParsedLog:
    """Everything learned from one log: unique steps in order, markers and problems."""

    steps: list[ProgressRecord] = field(default_factory=list)
    max_steps: int | None = None
    stopped_at: int | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def last(self) -> ProgressRecord | None:
        """Return the record of the highest global step, or None."""
        return self.steps[-1] if self.steps else None

    @property
    def reached_last_step(self) -> bool:
        """True when the last step (max_steps - 1) was logged or the stop marker was seen."""
        if self.stopped_at is not None:
            return True
        return bool(self.last and self.max_steps and self.last.step >= self.max_steps - 1)


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def parse_progress_line(line: str, lineno: int = 0) -> ProgressRecord | None:
    """Return the record of one progress line, or None when ``line`` is not one."""
    m = PROGRESS_RE.search(line)
    if not m:
        return None
    rec = ProgressRecord(int(m.group(1)), int(m.group(2)), int(m.group(3)), lineno)
    for key, raw in PAIR_RE.findall(m.group(4)):
        attr = KEY_MAP.get(key.strip())
        value = _number(raw)
        if attr is None or value is None:
            continue
        setattr(rec, attr, int(value) if attr == "global_step" else value)
    return rec


def parse_lines(lines: Iterable[str]) -> ParsedLog:
    """Return the parsed log of ``lines``: unique global steps (last occurrence kept), in order."""
    by_step: dict[int, ProgressRecord] = {}
    out = ParsedLog()
    for lineno, line in enumerate(lines, 1):
        if "Training epoch" in line:
            rec = parse_progress_line(line, lineno)
            if rec is None:
                out.problems.append(f"line {lineno}: unparseable progress line")
                continue
            if rec.step in by_step:
                out.problems.append(f"line {lineno}: step {rec.step} repeated; keeping the last")
            by_step[rec.step] = rec
            out.max_steps = rec.max_iteration + 1 if rec.epoch == 0 else out.max_steps or rec.max_iteration + 1
        elif "Trainer.fit" in line:
            m = STOPPED_RE.search(line)
            if m:
                out.stopped_at = int(m.group(1))
    out.steps = [by_step[k] for k in sorted(by_step)]
    return out


def parse_text(text: str) -> ParsedLog:
    """Return the parsed log of a whole text (thin wrapper over :func:`parse_lines`)."""
    return parse_lines(text.splitlines())
