"""Parameter shards: how a full tensor is cut for one rank, how the shards are glued back, and the tags on them.

Each sharded or specially reduced parameter carries Megatron-style attributes (Megatron sets
``param.tensor_model_parallel``, ``param.sequence_parallel``, ``param.allreduce``):

* ``tiny_tp_dim`` (int): the dimension split over the tensor-parallel group; ``tiny_tp_fused`` (int, default 1):
  how many blocks are fused along it (Mixtral's ``gate_up_proj`` holds gate and up: 2), each block split alike.
* ``tiny_tp_partial`` (bool): replicated over TP, but each TP rank's gradient is a partial sum (sequence-parallel
  norms and router, LoRA A of column-parallel and LoRA B of row-parallel layers): summed over TP before DP.
* ``tiny_expert`` (bool): an expert weight, split over EP along dim 0 (and over ETP = TP along ``tiny_tp_dim``);
  reduced over the expert data-parallel group.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from scaling_matrix.tiny.comm import Group, all_gather_list


def shard_tensor(full: torch.Tensor, dim: int, rank: int, size: int, fused: int = 1) -> torch.Tensor:
    """Returns rank ``rank``'s shard of ``full`` along ``dim`` (each of ``fused`` blocks split alike), a copy.

    Args:
        full: The unsharded tensor.
        dim: Dimension to split.
        rank: Member index.
        size: Number of members (must divide each block's size along ``dim``).
        fused: Number of equally sized blocks concatenated along ``dim``.
    """
    blocks = full.chunk(fused, dim=dim)
    return torch.cat([b.chunk(size, dim=dim)[rank] for b in blocks], dim=dim).clone()


def unshard_tensor(parts: list[torch.Tensor], dim: int, fused: int = 1) -> torch.Tensor:
    """Returns the full tensor from every member's shard (inverse of :func:`shard_tensor`).

    Args:
        parts: Shards in member order.
        dim: Split dimension.
        fused: Number of fused blocks along ``dim``.
    """
    per_part = [p.chunk(fused, dim=dim) for p in parts]
    return torch.cat([torch.cat([pp[b] for pp in per_part], dim=dim) for b in range(fused)], dim=dim)


def replace_parameter(module: nn.Module, name: str, value: torch.Tensor, **tags: Any) -> nn.Parameter:
    """Returns the new parameter ``module.<name>`` holding ``value`` (trainability kept), tagged with ``tags``.

    Args:
        module: Owner module.
        name: Attribute name of the parameter.
        value: New data (a shard).
        tags: Attributes set on the parameter (``tiny_tp_dim=0`` ...).
    """
    old = getattr(module, name)
    param = nn.Parameter(value.detach().clone(), requires_grad=old.requires_grad)
    for key, tag in tags.items():
        setattr(param, key, tag)
    setattr(module, name, param)
    return param


def tag(params: Iterable[nn.Parameter], **tags: Any) -> None:
    """Returns None after setting ``tags`` as attributes on each parameter.

    Args:
        params: Parameters to tag.
        tags: Attribute values.
    """
    for p in params:
        for key, value in tags.items():
            setattr(p, key, value)


def shard_parameter(module: nn.Module, name: str, dim: int, group: Group, fused: int = 1) -> None:
    """Returns None after replacing ``module.<name>`` by this rank's TP shard along ``dim``.

    Args:
        module: Owner module.
        name: Parameter attribute.
        dim: Split dimension.
        group: The tensor-parallel group.
        fused: Fused blocks along ``dim``.
    """
    full = getattr(module, name).detach()
    replace_parameter(module, name, shard_tensor(full, dim, group.rank, group.size, fused),
                      tiny_tp_dim=dim, tiny_tp_fused=fused)


def replicas(param: nn.Parameter, world: int, tp: int, edp: int) -> int:
    """Returns how many ranks hold an identical copy of ``param`` (for counting it once in a global norm).

    Args:
        param: A (possibly sharded) parameter.
        world: World size.
        tp: Tensor-parallel size.
        edp: Expert data-parallel size.
    """
    if getattr(param, "tiny_expert", False):
        return edp
    if hasattr(param, "tiny_tp_dim"):
        return world // tp
    return world


def gather_full(param: nn.Parameter, tp: Group, ep: Group) -> torch.Tensor:
    """Returns the unsharded value of ``param`` (a collective: every rank of the groups must call it).

    Args:
        param: A parameter of the sharded model.
        tp: Tensor-parallel group (also the expert tensor-parallel group).
        ep: Expert-parallel group.
    """
    value = param.detach()
    if hasattr(param, "tiny_tp_dim"):
        value = unshard_tensor(all_gather_list(value, tp), param.tiny_tp_dim, getattr(param, "tiny_tp_fused", 1))
    if getattr(param, "tiny_expert", False):
        value = torch.cat(all_gather_list(value, ep), dim=0)
    return value
