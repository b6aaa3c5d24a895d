"""Model-parallel training glue: shard a model, reduce and clip its gradients, count and gather its parameters.

Gradient reduction after each step (Megatron's DDP semantics):

1. parameters tagged ``tiny_tp_partial`` are summed over the TP group;
2. dense parameters are averaged over the dense DP group (``world / TP``);
3. expert parameters are scaled by ``1/DP`` and summed over the expert DP group (``world / (ETP * EP)``).

The global gradient norm for clipping counts each parameter once: every rank adds ``|g|^2 / replicas`` and the sum
is all-reduced over the world, so clipping equals the 1-rank run's ``clip_grad_norm_`` up to rounding.
``reduced_train_loss`` is averaged over DP ranks only (TP ranks hold the same loss).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from scaling_matrix.tiny.comm import Group, ParallelGroups, all_reduce_
from scaling_matrix.tiny.expert_parallel import parallelize_moe
from scaling_matrix.tiny.factories import FactorySpec
from scaling_matrix.tiny.sharding import gather_full, replicas
from scaling_matrix.tiny.tensor_parallel import causal_lm, parallelize_attention_and_mlp, parallelize_ends


def parallelize(model: Any, spec: FactorySpec, groups: ParallelGroups) -> Any:
    """Returns ``model`` with its weights cut to this rank's TP / EP shards and the parallel regions hooked.

    Args:
        model: The full model (``PeftModel`` or plain), identical on every rank.
        spec: Its factory (``is_moe`` selects the expert-parallel MoE path).
        groups: This rank's process groups.
    """
    lm = causal_lm(model)
    sp, tp = groups.layout.sp, groups.tp
    for layer in lm.model.layers:
        if tp.size > 1:
            parallelize_attention_and_mlp(layer, tp, sp, dense_mlp=not spec.is_moe)
        if spec.is_moe and (tp.size > 1 or groups.ep.size > 1):
            parallelize_moe(layer.mlp, groups, sp)
    if tp.size > 1:
        parallelize_ends(lm, tp, sp)
    return model


def _flat_all_reduce(grads: Sequence[torch.Tensor], group: Group, scale: float) -> None:
    """Returns None after summing ``grads`` over ``group`` in one flat buffer and multiplying them by ``scale``."""
    if not grads or (group.size == 1 and scale == 1.0):
        return
    flat = all_reduce_(torch.cat([g.reshape(-1) for g in grads]), group)
    if scale != 1.0:
        flat *= scale
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


class ModelParallelReducer:
    """Gradient reduction, clipping and loss averaging for a TP / SP / EP layout (see the module docstring)."""

    def __init__(self, groups: ParallelGroups) -> None:
        """Returns None; remembers the groups.

        Args:
            groups: This rank's process groups.
        """
        self.groups = groups

    def reduce_gradients(self, params: Sequence[nn.Parameter]) -> None:
        """Returns None after the TP, DP and expert-DP reductions of every trainable parameter's gradient.

        Args:
            params: Trainable parameters (same order on every rank); missing gradients become zeros.
        """
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        g = self.groups
        _flat_all_reduce([p.grad for p in params if getattr(p, "tiny_tp_partial", False)], g.tp, 1.0)
        dense = [p.grad for p in params if not getattr(p, "tiny_expert", False)]
        _flat_all_reduce(dense, g.dp, 1.0 / g.dp.size)
        expert = [p.grad for p in params if getattr(p, "tiny_expert", False)]
        _flat_all_reduce(expert, g.edp, 1.0 / g.dp.size)

    def clip_gradients(self, params: Sequence[nn.Parameter], max_norm: float) -> float:
        """Returns the global gradient norm after scaling the gradients to at most ``max_norm`` (as torch does).

        Args:
            params: Trainable parameters with reduced gradients.
            max_norm: Clipping threshold.
        """
        lay = self.groups.layout
        local = torch.zeros((), dtype=torch.float64)
        for p in params:
            local += p.grad.double().pow(2).sum() / replicas(p, lay.world, lay.tp, lay.edp)
        if dist.is_initialized():
            dist.all_reduce(local, op=dist.ReduceOp.SUM)
        total = math.sqrt(float(local))
        coef = min(max_norm / (total + 1e-6), 1.0)
        for p in params:
            p.grad.mul_(coef)
        return total

    def mean_loss(self, value: float) -> float:
        """Returns ``value`` averaged over the data-parallel group.

        Args:
            value: This rank's loss.
        """
        return self.sum_over_dp([value])[0] / self.groups.dp.size

    def sum_over_dp(self, values: list[float]) -> list[float]:
        """Returns ``values`` summed element-wise over the data-parallel group (float64).

        Args:
            values: This rank's numbers (same length on every rank).
        """
        return all_reduce_(torch.tensor(values, dtype=torch.float64), self.groups.dp).tolist()


def full_state(model: Any, groups: ParallelGroups, trainable_only: bool) -> dict[str, torch.Tensor]:
    """Returns ``{name: unsharded tensor}`` of the (trainable) parameters; a collective over all ranks.

    Args:
        model: The sharded model.
        groups: This rank's process groups.
        trainable_only: Only parameters with ``requires_grad`` (the LoRA adapter).
    """
    return {name: gather_full(p, groups.tp, groups.ep) for name, p in model.named_parameters()
            if p.requires_grad or not trainable_only}


def load_full_state(model: Any, state: dict[str, torch.Tensor]) -> None:
    """Returns None after copying ``state`` into the same-named parameters of an unsharded ``model``.

    Args:
        model: A freshly built full model with the same structure (and adapter).
        state: Result of :func:`full_state`.

    Raises:
        KeyError: A name that the model does not have.
    """
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, value in state.items():
            params[name].copy_(value)


def local_counts(model: Any) -> dict[str, int]:
    """Returns this rank's parameter counts: ``total``, ``trainable``, ``expert``, ``non_expert`` (local shards).

    Args:
        model: The (possibly sharded) model.
    """
    params = list(model.parameters())
    expert = sum(p.numel() for p in params if _is_expert(p))
    total = sum(p.numel() for p in params)
    return {"total": total, "trainable": sum(p.numel() for p in params if p.requires_grad), "expert": expert,
            "non_expert": total - expert}


def counts_per_rank(model: Any) -> list[dict[str, int]]:
    """Returns :func:`local_counts` of every rank, in rank order (a collective over the world).

    Args:
        model: This rank's (possibly sharded) model.
    """
    mine = local_counts(model)
    keys = list(mine)
    world = dist.get_world_size() if dist.is_initialized() else 1
    rank = dist.get_rank() if dist.is_initialized() else 0
    table = torch.zeros((world, len(keys)), dtype=torch.float64)
    table[rank] = torch.tensor([float(mine[k]) for k in keys], dtype=torch.float64)
    if world > 1:
        dist.all_reduce(table, op=dist.ReduceOp.SUM)
    return [{"rank": r, **{k: int(table[r, i]) for i, k in enumerate(keys)}} for r in range(world)]


def _is_expert(param: nn.Parameter) -> bool:
    """Returns True for expert weights (tagged shards, or the fused 3-D expert tensors of an unsharded model)."""
    return bool(getattr(param, "tiny_expert", False)) or param.dim() == 3
