"""Pure formatting of NeMo's log lines (ProgressPrinter, NeMo logger prefix) and the learning-rate schedule."""

from __future__ import annotations

import math
from datetime import datetime


def format_number(value: float | int) -> str:
    """Returns ``value`` as NeMo's ProgressPrinter prints it: integer-valued floats as ints, else ``'{:.4}'``.

    Args:
        value: A metric value (``1.961e-06``, ``0.1058``, ``1.249e+03``; ``8.0`` -> ``8``).
    """
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    if math.isfinite(value) and float(value).is_integer():
        return str(int(value))
    return f"{value:.4}"


def format_progress_line(
    *,
    epoch: int,
    iteration: int,
    max_steps: int,
    lr: float,
    global_batch_size: int,
    global_step: int,
    reduced_train_loss: float,
    train_step_timing: float,
    consumed_samples: int | None = None,
    val_loss: float | None = None,
) -> str:
    """Returns one NeMo progress line (key order of a fresh NeMo run).

    ``Training epoch {E}, iteration {i}/{max_steps-1} | lr: ... | global_batch_size: ... | global_step: ... |
    reduced_train_loss: ... | train_step_timing in s: ... [| consumed_samples: ...] [| val_loss: ...]``

    Args:
        epoch: Epoch index.
        iteration: Step within the epoch.
        max_steps: ``trainer.max_steps``.
        lr: Learning rate of the step.
        global_batch_size: ``data.global_batch_size``.
        global_step: Global step index (0-based).
        reduced_train_loss: Loss averaged over micro-batches and data-parallel ranks.
        train_step_timing: Wall seconds of the step on rank 0.
        consumed_samples: Samples consumed after this step; None omits it (NeMo omits it on step 0).
        val_loss: Last validation loss; None until a validation has run.
    """
    metrics: list[tuple[str, float | int]] = [
        ("lr", lr),
        ("global_batch_size", global_batch_size),
        ("global_step", global_step),
        ("reduced_train_loss", reduced_train_loss),
        ("train_step_timing in s", train_step_timing),
    ]
    if consumed_samples is not None:
        metrics.append(("consumed_samples", consumed_samples))
    if val_loss is not None:
        metrics.append(("val_loss", val_loss))
    head = f"Training epoch {epoch}, iteration {iteration}/{max_steps - 1}"
    return head + "".join(f" | {key}: {format_number(value)}" for key, value in metrics)


def format_nemo_log(message: str, level: str = "I", now: datetime | None = None, where: str = "tiny:1") -> str:
    """Returns ``[NeMo <level> YYYY-mm-dd HH:MM:SS <where>] <message>`` (NeMo's logger prefix).

    Args:
        message: Text after the prefix.
        level: ``I``, ``W`` or ``E``.
        now: Timestamp (default: local now).
        where: ``module:line`` field.
    """
    stamp = (now or datetime.now()).strftime("%Y-%m-%d %H:%M:%S")
    return f"[NeMo {level} {stamp} {where}] {message}"


def format_fit_stopped(max_steps: int) -> str:
    """Returns Lightning's normal-end line, `` `Trainer.fit` stopped: `max_steps=N` reached. ``.

    Args:
        max_steps: ``trainer.max_steps``.
    """
    return f"`Trainer.fit` stopped: `max_steps={max_steps}` reached."


def lr_at_step(step: int, *, max_lr: float, min_lr: float, warmup_steps: int, max_steps: int) -> float:
    """Returns the learning rate of ``step`` under NeMo's warmup + cosine annealing policy.

    Warmup: ``max_lr * (step + 1) / (warmup_steps + 1)`` for ``step < warmup_steps``; then
    ``min_lr + (max_lr - min_lr) * 0.5 * (1 + cos(pi * (step - warmup) / (max_steps - warmup)))``;
    ``min_lr`` from ``max_steps`` on (NeMo ``WarmupAnnealHoldPolicy`` / ``CosineAnnealing``).

    Args:
        step: 0-based global step.
        max_lr: Peak learning rate (``optim.config.lr``).
        min_lr: ``optim.lr_scheduler.min_lr``.
        warmup_steps: ``optim.lr_scheduler.warmup_steps``.
        max_steps: ``trainer.max_steps``.
    """
    if step < warmup_steps:
        return max_lr * (step + 1) / (warmup_steps + 1)
    if step >= max_steps:
        return min_lr
    decay_steps = max(max_steps - warmup_steps, 1)
    mult = 0.5 * (1.0 + math.cos(math.pi * (step - warmup_steps) / decay_steps))
    return (max_lr - min_lr) * mult + min_lr
