"""Records produced by the log parsers: progress steps, validation results, the job footer, the whole log."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ProgressRecord:
    """One logged training step: the values the framework printed for it.

    ``iteration``/``max_iteration`` are the printed ``i/N`` (``max_iteration`` is None when the
    format prints no denominator); memory is in bytes, times in seconds.
    """

    epoch: int
    iteration: int
    max_iteration: int | None
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
    grad_norm: float | None = None
    tokens_per_s: float | None = None
    tokens_per_s_per_gpu: float | None = None
    num_label_tokens: float | None = None
    num_tokens_per_step: float | None = None
    timestamp_s: float | None = None

    @property
    def step(self) -> int:
        """Return the global step (falls back to the iteration when not logged)."""
        return self.global_step if self.global_step is not None else self.iteration


@dataclass(frozen=True)
class ValRecord:
    """One evaluation result line (AutoModel ``[val]``, Megatron ``validation loss at ...``).

    ``split`` is ``val`` or ``test``: Megatron's end-of-training evaluation prints ``... for test data``
    on a line that also starts ``validation loss``; the two are kept apart.
    """

    step: int | None
    loss: float
    lineno: int
    split: str = "val"


@dataclass
class RestartEvent:
    """One in-job restart: a restart marker (torchrun elastic ``Worker group FAILED ... will restart``) and/or
    progress going back to a step already logged (resume from the ``-last`` checkpoint).

    ``after_step``: the highest step logged before it; ``resumed_at``: the first step logged after it
    (None: no progress after it); ``steps_redone``: logged steps executed again; ``time_lost_s``: the
    step times of the work thrown away (their first executions). Restart overhead (process start,
    checkpoint load) is not in any step time and is not counted.
    """

    lineno: int
    after_step: int | None
    resumed_at: int | None
    steps_redone: int
    time_lost_s: float
    evidence: str


@dataclass
class JobFooter:
    """The workshop's wall-clock wrapper: ``Start time :``, ``End time   :``, ``Total time : HH:MM:SS``."""

    start_s: float | None = None
    end_s: float | None = None
    total_s: float | None = None

    @property
    def elapsed_s(self) -> float | None:
        """Return ``Total time`` in seconds, else End - Start, else None."""
        if self.total_s is not None:
            return self.total_s
        if self.start_s is not None and self.end_s is not None and self.end_s >= self.start_s:
            return self.end_s - self.start_s
        return None


@dataclass
class ParsedLog:
    """Everything learned from one log: unique steps in order, markers, failure and problems.

    ``first_step`` is the number of the first step in the format's counting (0 for NeMo's
    ``global_step``, 1 for Megatron's ``iteration``); it makes :attr:`reached_last_step` exact.
    """

    steps: list[ProgressRecord] = field(default_factory=list)
    max_steps: int | None = None
    stopped_at: int | None = None
    problems: list[str] = field(default_factory=list)
    format: str = "unknown"
    first_step: int = 0
    validations: list[ValRecord] = field(default_factory=list)
    validation_iterations: int = 0
    validation_runs: int = 0
    sanity_iterations: int = 0
    memory_peaks: dict[str, float] = field(default_factory=dict)
    footer: JobFooter = field(default_factory=JobFooter)
    failure: str | None = None
    failure_line: str | None = None
    failure_signature: str | None = None
    failure_lineno: int | None = None
    lines: int = 0
    progress_lines: int = 0  # every progress line parsed, repeats included
    first_logged_step: int | None = None
    last_logged_step: int | None = None  # of the last progress line in file order
    last_progress_pos: int | None = None  # byte offset of that line (for the failure judgement)
    logged_time_sum_s: float = 0.0  # step times as printed, over every progress line
    logged_time_count: int = 0
    restarts: list[RestartEvent] = field(default_factory=list)
    signatures: list[Any] = field(default_factory=list)  # parsing.failures.Signature, in log order
    end_marker_line: int | None = None  # Megatron ``[after training is done]``
    early_exit_line: int | None = None  # Megatron ``exiting program after/at ...``
    step_counter_global: bool = True  # False: NeMo lines without global_step (the iteration resets per epoch)

    @property
    def last(self) -> ProgressRecord | None:
        """Return the record of the highest global step, or None."""
        return self.steps[-1] if self.steps else None

    @property
    def reached_last_step(self) -> bool:
        """True when the run visibly finished: the stop marker, Megatron's ``[after training is done]``
        without an early-exit line, or the last step (``max_steps - 1`` counted from ``first_step``)."""
        if self.stopped_at is not None or (self.end_marker_line is not None and self.early_exit_line is None):
            return True
        last = self.last
        return bool(last and self.max_steps and last.step >= self.max_steps - 1 + self.first_step)

    @property
    def mean_logged_step_time_s(self) -> float | None:
        """Return the mean of the step times the log printed (every progress line, repeats included)."""
        return self.logged_time_sum_s / self.logged_time_count if self.logged_time_count else None

    @property
    def restart_time_lost_s(self) -> float:
        """Return the step time thrown away by all in-job restarts."""
        return sum(r.time_lost_s for r in self.restarts)

    @property
    def completed(self) -> bool:
        """True when the last step was reached and no fatal failure signature was found."""
        return self.reached_last_step and self.failure is None

    @property
    def last_val_loss(self) -> float | None:
        """Return the latest validation loss in log order (progress ``val_loss`` or a ``val`` line; never test)."""
        best: tuple[int, float] | None = None
        for rec in reversed(self.steps):
            if rec.val_loss is not None:
                best = (rec.lineno, rec.val_loss)
                break
        vals = [v for v in self.validations if v.split == "val"]
        if vals:
            v = max(vals, key=lambda r: r.lineno)
            if best is None or v.lineno > best[0]:
                best = (v.lineno, v.loss)
        return None if best is None else best[1]

    @property
    def last_test_loss(self) -> float | None:
        """Return the latest test loss (Megatron ``validation loss at the end of training for test data``)."""
        tests = [v for v in self.validations if v.split == "test"]
        return max(tests, key=lambda r: r.lineno).loss if tests else None
