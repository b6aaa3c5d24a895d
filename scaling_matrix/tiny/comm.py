"""Process groups of a model-parallel job and the autograd-aware collectives that Megatron's layers are made of.

Every operator is a pair (forward, backward) with Megatron-LM's semantics (``tensor_parallel/mappings.py``):

==========================  ===========================  ===========================
operator                    forward                      backward
==========================  ===========================  ===========================
:func:`copy_to_tp`          identity                     all-reduce (TP)
:func:`reduce_from_tp`      all-reduce (TP)              identity
:func:`scatter_to_sp`       keep own chunk (dim)         all-gather (dim)
:func:`gather_from_sp`      all-gather (dim)             keep own chunk (dim)
:func:`all_to_all`          all-to-all (splits)          all-to-all (swapped splits)
==========================  ===========================  ===========================

Megatron's ``gather_from_sequence_parallel_region`` (all-gather, backward reduce-scatter) is
``copy_to_tp(gather_from_sp(x))`` and ``reduce_scatter_to_sequence_parallel_region`` is
``scatter_to_sp(reduce_from_tp(x))``: gloo has no reduce-scatter that autograd can use directly, so a
reduce-scatter is an all-reduce followed by keeping the own chunk (same numbers, more bytes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from scaling_matrix.tiny.layout import ParallelLayout


@dataclass(frozen=True)
class Group:
    """One process group this rank belongs to.

    Attributes:
        handle: The torch process group (None when the group is this rank alone).
        ranks: Global ranks of the members, in group-rank order.
        rank: This process's rank within the group.
    """

    handle: Any
    ranks: tuple[int, ...]
    rank: int

    @property
    def size(self) -> int:
        """Returns the number of members."""
        return len(self.ranks)


@dataclass(frozen=True)
class ParallelGroups:
    """The groups of one rank: ``tp``, ``dp``, ``ep``, ``edp`` (``etp`` equals ``tp`` in the tiny engine)."""

    layout: ParallelLayout
    tp: Group
    dp: Group
    ep: Group
    edp: Group


def build_groups(layout: ParallelLayout, rank: int) -> ParallelGroups:
    """Returns this rank's groups; every rank creates every group in the same order (a collective call).

    Args:
        layout: The job's layout.
        rank: Global rank.
    """
    mine: dict[str, Group] = {}
    for kind, rank_lists in layout.groups().items():
        for ranks in rank_lists:
            handle = dist.new_group(ranks) if len(ranks) > 1 else None
            if rank in ranks:
                mine[kind] = Group(handle, tuple(ranks), ranks.index(rank))
    return ParallelGroups(layout, mine["tp"], mine["dp"], mine["ep"], mine["edp"])


def all_reduce_(tensor: torch.Tensor, group: Group) -> torch.Tensor:
    """Returns ``tensor`` after an in-place SUM all-reduce over ``group`` (no-op for one member).

    Args:
        tensor: Contiguous tensor.
        group: The group.
    """
    if group.size > 1:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM, group=group.handle)
    return tensor


def all_gather_list(tensor: torch.Tensor, group: Group) -> list[torch.Tensor]:
    """Returns every member's equally shaped tensor, in member order (no autograd).

    Args:
        tensor: This rank's part.
        group: The group.
    """
    if group.size == 1:
        return [tensor]
    parts = [torch.empty_like(tensor) for _ in range(group.size)]
    dist.all_gather(parts, tensor.contiguous(), group=group.handle)
    return parts


def all_gather_cat(tensor: torch.Tensor, group: Group, dim: int) -> torch.Tensor:
    """Returns the members' equally shaped tensors concatenated along ``dim`` (no autograd).

    Args:
        tensor: This rank's part.
        group: The group.
        dim: Concatenation dimension.
    """
    return tensor if group.size == 1 else torch.cat(all_gather_list(tensor, group), dim=dim)


def own_chunk(tensor: torch.Tensor, group: Group, dim: int) -> torch.Tensor:
    """Returns this rank's equal chunk of ``tensor`` along ``dim`` (contiguous copy).

    Args:
        tensor: Full tensor (size along ``dim`` divisible by the group size).
        group: The group.
        dim: Split dimension.
    """
    if group.size == 1:
        return tensor
    return tensor.chunk(group.size, dim=dim)[group.rank].contiguous()


class _CopyToTP(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, group: Group) -> torch.Tensor:
        ctx.group = group
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return all_reduce_(grad.contiguous().clone(), ctx.group), None


class _ReduceFromTP(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, group: Group) -> torch.Tensor:
        return all_reduce_(x.contiguous().clone(), group)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad, None


class _ScatterToSP(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, group: Group, dim: int) -> torch.Tensor:
        ctx.group, ctx.dim = group, dim
        return own_chunk(x, group, dim)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        return all_gather_cat(grad, ctx.group, ctx.dim), None, None


class _GatherFromSP(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, group: Group, dim: int) -> torch.Tensor:
        ctx.group, ctx.dim = group, dim
        return all_gather_cat(x, group, dim)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        return own_chunk(grad, ctx.group, ctx.dim), None, None


class _AllToAll(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, group: Group, send: list[int], recv: list[int]) -> torch.Tensor:
        ctx.group, ctx.send, ctx.recv = group, send, recv
        return exchange(x, group, send, recv)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None, None]:
        return exchange(grad, ctx.group, ctx.recv, ctx.send), None, None, None


def exchange(x: torch.Tensor, group: Group, send: list[int], recv: list[int]) -> torch.Tensor:
    """Returns the rows received by ``all_to_all_single`` (no autograd): ``send[i]`` rows go to member ``i``.

    Args:
        x: Rows to send, grouped by destination (``sum(send)`` rows).
        group: The group.
        send: Rows for each member.
        recv: Rows from each member.
    """
    if group.size == 1:
        return x.clone()
    out = x.new_empty((sum(recv), *x.shape[1:]))
    dist.all_to_all_single(out, x.contiguous(), output_split_sizes=recv, input_split_sizes=send,
                           group=group.handle)
    return out


def copy_to_tp(x: torch.Tensor, group: Group) -> torch.Tensor:
    """Returns ``x`` (forward identity; backward all-reduces the gradient over the TP group)."""
    return _CopyToTP.apply(x, group) if group.size > 1 else x


def reduce_from_tp(x: torch.Tensor, group: Group) -> torch.Tensor:
    """Returns the sum of ``x`` over the TP group (backward identity)."""
    return _ReduceFromTP.apply(x, group) if group.size > 1 else x


def scatter_to_sp(x: torch.Tensor, group: Group, dim: int) -> torch.Tensor:
    """Returns this rank's chunk of ``x`` along ``dim`` (backward all-gathers)."""
    return _ScatterToSP.apply(x, group, dim) if group.size > 1 else x


def gather_from_sp(x: torch.Tensor, group: Group, dim: int) -> torch.Tensor:
    """Returns the members' chunks concatenated along ``dim`` (backward keeps the own chunk)."""
    return _GatherFromSP.apply(x, group, dim) if group.size > 1 else x


def all_to_all(x: torch.Tensor, group: Group, send: list[int], recv: list[int]) -> torch.Tensor:
    """Returns the rows received from every member (differentiable; backward sends gradients back)."""
    return _AllToAll.apply(x, group, send, recv) if group.size > 1 else x
