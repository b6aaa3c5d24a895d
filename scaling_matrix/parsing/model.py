"""Records produced by the log parsers: progress steps, validation results, the job footer, the whole log."""

from __future__ import annotations

from dataclasses import dataclass, field


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
    """One validation result line (AutoModel ``[val]``, Megatron ``validation loss at iteration``)."""

    step: int | None
    loss: float
    lineno: int


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
    lines: int = 0

    @property
    def last(self) -> ProgressRecord | None:
        """Return the record of the highest global step, or None."""
        return self.steps[-1] if self.steps else None

    @property
    def reached_last_step(self) -> bool:
        """True when the last step (``max_steps - 1`` counted from ``first_step``) or the stop marker was seen."""
        if self.stopped_at is not None:
            return True
        last = self.last
        return bool(last and self.max_steps and last.step >= self.max_steps - 1 + self.first_step)

    @property
    def completed(self) -> bool:
        """True when the last step was reached and no fatal failure signature was found."""
        return self.reached_last_step and self.failure is None

    @property
    def last_val_loss(self) -> float | None:
        """Return the latest validation loss in log order (progress ``val_loss`` or a validation line)."""
        best: tuple[int, float] | None = None
        for rec in reversed(self.steps):
            if rec.val_loss is not None:
                best = (rec.lineno, rec.val_loss)
                break
        if self.validations:
            v = max(self.validations, key=lambda r: r.lineno)
            if best is None or v.lineno > best[0]:
                best = (v.lineno, v.loss)
        return None if best is None else best[1]
