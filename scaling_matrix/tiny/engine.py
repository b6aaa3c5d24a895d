"""Model-side pieces of a tiny fine-tune: PEFT wrapping, masked losses, one optimizer step, validation.

Megatron semantics: a micro-batch loss is the mean over its answer tokens; a step accumulates
``global_batch / (micro_batch * DP)`` micro-batches (each backward scaled by 1/num_micro), gradients are
averaged over DP ranks, and ``reduced_train_loss`` is the micro-batch mean averaged over ranks. The validation
loss is the mean over examples of each example's answer-token mean, so it does not depend on DP size or batching.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch
import torch.nn.functional as F

from scaling_matrix.tiny import distributed
from scaling_matrix.tiny.data import IGNORE_INDEX, QAExample, chunk, encode_example
from scaling_matrix.tiny.factories import FactorySpec, resolve_targets

GRAD_CLIP = 1.0
ADAM_BETAS = (0.9, 0.98)
WEIGHT_DECAY = 0.01
PAD_EXAMPLE = QAExample("pad", "", "", "")  # forward-only filler keeping expert-parallel ranks in step


class GradientReducer(Protocol):
    """How a step's gradients and numbers are combined over ranks (data parallel, or a model-parallel layout)."""

    def reduce_gradients(self, params: Sequence[Any]) -> None:
        """Returns None after the gradients of ``params`` are reduced over the ranks that share them."""

    def clip_gradients(self, params: Sequence[Any], max_norm: float) -> float:
        """Returns the global gradient norm after clipping the gradients to ``max_norm``."""

    def mean_loss(self, value: float) -> float:
        """Returns ``value`` averaged over the data-parallel ranks."""

    def sum_over_dp(self, values: list[float]) -> list[float]:
        """Returns ``values`` summed element-wise over the data-parallel ranks."""


class DataParallelReducer:
    """Plain data parallelism over all ranks: gradient mean, ``clip_grad_norm_``, loss mean over the world."""

    def reduce_gradients(self, params: Sequence[Any]) -> None:
        """Returns None after replacing each gradient by its mean over all ranks."""
        distributed.average_gradients(params)

    def clip_gradients(self, params: Sequence[Any], max_norm: float) -> float:
        """Returns the gradient norm before ``torch.nn.utils.clip_grad_norm_`` clipped it."""
        return float(torch.nn.utils.clip_grad_norm_(params, max_norm))

    def mean_loss(self, value: float) -> float:
        """Returns ``value`` averaged over all ranks."""
        summed, ranks = distributed.all_reduce_sum([value, 1.0])
        return summed / ranks

    def sum_over_dp(self, values: list[float]) -> list[float]:
        """Returns ``values`` summed over all ranks."""
        return distributed.all_reduce_sum(values)


@dataclass(frozen=True)
class PeftChoice:
    """What to train: ``lora`` (with rank, alpha, HF target modules) or ``none`` (all weights)."""

    kind: str
    dim: int = 8
    alpha: int = 16
    targets: tuple[str, ...] = ()


def peft_choice(spec: FactorySpec, kind: str, dim: int | None, alpha: int | None,
                targets: list[str] | None) -> PeftChoice:
    """Returns the PEFT setting with factory defaults filled in and NeMo target names translated.

    Args:
        spec: The factory.
        kind: ``lora`` or ``none``.
        dim: ``peft.dim`` or None.
        alpha: ``peft.alpha`` or None.
        targets: ``peft.target_modules`` or None.
    """
    if kind == "none":
        return PeftChoice("none")
    return PeftChoice("lora", dim or spec.lora_dim, alpha or spec.lora_alpha, tuple(resolve_targets(spec, targets)))


def apply_peft(model: Any, choice: PeftChoice, seed: int) -> Any:
    """Returns the model to train: a ``PeftModel`` with LoRA adapters, or the base model unfrozen.

    Args:
        model: The imported base model.
        choice: Result of :func:`peft_choice`.
        seed: Seed for the adapter initialisation (identical on every rank).
    """
    if choice.kind == "none":
        for p in model.parameters():
            p.requires_grad_(True)
        return model
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=choice.dim, lora_alpha=choice.alpha, lora_dropout=0.0, bias="none",
                        target_modules=list(choice.targets), task_type="CAUSAL_LM")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return get_peft_model(model, config)


def count_parameters(model: Any) -> tuple[int, int]:
    """Returns ``(trainable, total)`` parameter counts.

    Args:
        model: Any torch module.
    """
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


def encode_batch(examples: Sequence[QAExample], seq_length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Returns ``(input_ids, labels)`` int64 tensors of shape ``[len(examples), seq_length]``.

    Args:
        examples: Questions.
        seq_length: ``data.seq_length``.
    """
    pairs = [encode_example(ex, seq_length) for ex in examples]
    return torch.tensor([p[0] for p in pairs]), torch.tensor([p[1] for p in pairs])


def token_losses(model: Any, input_ids: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Returns ``(per-token loss [B, L-1], answer mask [B, L-1])`` for next-token prediction.

    Right padding and causal attention mean real tokens never see padding, so no attention mask is passed.

    Args:
        model: Causal LM.
        input_ids: ``[B, L]`` ids.
        labels: ``[B, L]`` labels aligned with ``input_ids`` (-100 = ignored).
    """
    logits = model(input_ids=input_ids).logits[:, :-1, :].float()
    target = labels[:, 1:]
    losses = F.cross_entropy(logits.reshape(-1, logits.size(-1)), target.reshape(-1),
                             ignore_index=IGNORE_INDEX, reduction="none").view_as(target)
    return losses, (target != IGNORE_INDEX)


def micro_batch_loss(model: Any, input_ids: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Returns the mean loss over the answer tokens of a micro-batch (scalar, differentiable).

    Args:
        model: Causal LM.
        input_ids: ``[B, L]`` ids.
        labels: ``[B, L]`` labels.
    """
    losses, mask = token_losses(model, input_ids, labels)
    return (losses * mask).sum() / mask.sum().clamp(min=1)


def train_step(model: Any, optimizer: torch.optim.Optimizer, examples: Sequence[QAExample],
               micro_batch_size: int, seq_length: int, reducer: GradientReducer | None = None) -> float:
    """Returns ``reduced_train_loss`` after one optimizer step over this rank's share of a global batch.

    Args:
        model: Model in train mode.
        optimizer: Optimizer with the step's learning rate already set.
        examples: This rank's (data-parallel rank's) examples of the global batch.
        micro_batch_size: ``data.micro_batch_size``.
        seq_length: ``data.seq_length``.
        reducer: Gradient reduction over ranks (default :class:`DataParallelReducer`).
    """
    reducer = reducer or DataParallelReducer()
    optimizer.zero_grad(set_to_none=True)
    micro = chunk(examples, micro_batch_size)
    total = 0.0
    for part in micro:
        ids, labels = encode_batch(part, seq_length)
        loss = micro_batch_loss(model, ids, labels)
        (loss / len(micro)).backward()
        total += loss.item()
    params = [p for p in model.parameters() if p.requires_grad]
    reducer.reduce_gradients(params)
    reducer.clip_gradients(params, GRAD_CLIP)
    optimizer.step()
    return reducer.mean_loss(total / len(micro))


@torch.no_grad()
def example_losses(model: Any, examples: Sequence[QAExample], seq_length: int, batch_size: int,
                   min_batches: int = 0) -> list[float]:
    """Returns each example's mean answer-token loss (model evaluated in eval mode, state restored).

    Args:
        model: Causal LM.
        examples: Questions.
        seq_length: ``data.seq_length``.
        batch_size: Examples per forward pass.
        min_batches: Forward passes to make at least (padding with a discarded filler batch), so that
            expert-parallel ranks, whose forwards exchange tokens, stay in step.
    """
    was_training = model.training
    model.eval()
    out: list[float] = []
    parts = chunk(examples, batch_size)
    for part in parts:
        ids, labels = encode_batch(part, seq_length)
        losses, mask = token_losses(model, ids, labels)
        out.extend(((losses * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)).tolist())
    for _ in range(min_batches - len(parts)):
        token_losses(model, *encode_batch([PAD_EXAMPLE], seq_length))
    model.train(was_training)
    return out


def validation_loss(model: Any, examples: Sequence[QAExample], seq_length: int, batch_size: int,
                    reducer: GradientReducer | None = None, min_batches: int = 0) -> float:
    """Returns the mean per-example loss over all data-parallel ranks' ``examples`` (NaN when there are none).

    Args:
        model: Causal LM.
        examples: This rank's validation examples.
        seq_length: ``data.seq_length``.
        batch_size: Examples per forward pass.
        reducer: Sums over the data-parallel ranks (default :class:`DataParallelReducer`).
        min_batches: See :func:`example_losses`.
    """
    losses = example_losses(model, examples, seq_length, batch_size, min_batches)
    total, count = (reducer or DataParallelReducer()).sum_over_dp([sum(losses), float(len(losses))])
    return total / count if count else float("nan")


def make_optimizer(model: Any, lr: float) -> torch.optim.Optimizer:
    """Returns AdamW over the trainable parameters (betas 0.9/0.98 as NeMo's recipe, weight decay 0.01).

    Args:
        model: Model to train.
        lr: Initial learning rate (overwritten each step by the schedule).
    """
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.AdamW(params, lr=lr, betas=ADAM_BETAS, weight_decay=WEIGHT_DECAY)
