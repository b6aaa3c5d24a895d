"""Megatron-style tensor and sequence parallelism for the Hugging Face Llama / Mixtral models of the tiny engine.

Manual Megatron layers on plain tensors (no DTensor): each rank keeps its shard of every projection as an ordinary
``nn.Linear`` and the communication sits at the boundaries of the parallel regions, as forward hooks:

* attention: ``q/k/v_proj`` column-parallel (whole heads; KV heads split alike), ``o_proj`` row-parallel;
* dense MLP: ``gate/up_proj`` column-parallel, ``down_proj`` row-parallel;
* region entry ``f`` = :func:`~scaling_matrix.tiny.comm.copy_to_tp` (SP: all-gather along the sequence, backward
  reduce-scatter), region exit ``g`` = :func:`~scaling_matrix.tiny.comm.reduce_from_tp` (SP: reduce-scatter along
  the sequence, backward all-gather);
* embedding vocab-parallel (masked lookup + all-reduce) and ``lm_head`` column-parallel with the logits
  all-gathered (the loss is then computed alike on every TP rank);
* sequence parallelism: the residual stream between regions, the RMS norms and the MoE router hold
  ``seq_length / TP`` positions; the split happens at the first decoder layer and the gather before ``lm_head``.

LoRA (peft) is applied to the full model first (so its initialisation equals the 1-rank run), then sharded with
its base layer: column-parallel layers keep LoRA A whole and split LoRA B by output rows; row-parallel layers split
LoRA A by input columns and keep LoRA B whole. The whole factor's gradient is then a partial sum on each TP rank
(tagged ``tiny_tp_partial``) and is summed over TP, exactly like Megatron's LoRA adapters on parallel layers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from scaling_matrix.tiny.comm import Group, copy_to_tp, gather_from_sp, reduce_from_tp, scatter_to_sp
from scaling_matrix.tiny.sharding import shard_parameter, shard_tensor, tag

SEQ_DIM = 1
COLUMN = ("q_proj", "k_proj", "v_proj", "gate_proj", "up_proj")
ROW = ("o_proj", "down_proj")


def causal_lm(model: Any) -> Any:
    """Returns the Hugging Face ``*ForCausalLM`` inside ``model`` (the model itself when it is not a PeftModel).

    Args:
        model: A ``PeftModel`` or a ``PreTrainedModel``.
    """
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def shard_linear(module: nn.Module, dim: int, group: Group) -> None:
    """Returns None after cutting a linear layer (plain or LoRA-wrapped) to this rank's shard.

    Args:
        module: ``nn.Linear`` or a peft LoRA ``Linear`` wrapping one.
        dim: 0 for column-parallel (output rows), 1 for row-parallel (input columns).
        group: The tensor-parallel group.

    Raises:
        ValueError: The layer has a bias (no tiny factory has one; a row-parallel bias would need care).
    """
    base = getattr(module, "base_layer", module)
    if base.bias is not None:
        raise ValueError("tensor parallelism of biased linear layers is not supported by the tiny engine")
    attr = "out_features" if dim == 0 else "in_features"
    shard_parameter(base, "weight", dim, group)
    setattr(base, attr, getattr(base, attr) // group.size)
    if hasattr(module, attr) and module is not base:
        setattr(module, attr, getattr(module, attr) // group.size)
    for key in getattr(module, "lora_A", {}):
        split, whole = (module.lora_B[key], module.lora_A[key]) if dim == 0 else (module.lora_A[key],
                                                                                 module.lora_B[key])
        shard_parameter(split, "weight", dim, group)
        setattr(split, attr, getattr(split, attr) // group.size)
        tag([whole.weight], tiny_tp_partial=True)


def region_entry(x: torch.Tensor, group: Group, sp: bool) -> torch.Tensor:
    """Returns the input of a tensor-parallel region: ``f`` (SP: all-gather along the sequence first)."""
    return copy_to_tp(gather_from_sp(x, group, SEQ_DIM) if sp else x, group)


def region_exit(x: torch.Tensor, group: Group, sp: bool) -> torch.Tensor:
    """Returns the output of a tensor-parallel region: ``g`` (SP: then keep the own sequence chunk)."""
    x = reduce_from_tp(x, group)
    return scatter_to_sp(x, group, SEQ_DIM) if sp else x


def wrap_region(module: nn.Module, enter: Callable[[torch.Tensor], torch.Tensor],
                leave: Callable[[torch.Tensor], torch.Tensor] | None) -> None:
    """Returns None after hooking ``enter`` onto the module's hidden-states input and ``leave`` onto its output.

    Args:
        module: Attention, MLP, decoder layer or ``lm_head``.
        enter: Applied to the first positional argument or the ``hidden_states`` keyword.
        leave: Applied to the output (first element of a tuple output); None for no output hook.
    """
    def pre(_mod: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[tuple[Any, ...], dict]:
        if args:
            return (enter(args[0]), *args[1:]), kwargs
        return args, {**kwargs, "hidden_states": enter(kwargs["hidden_states"])}

    def post(_mod: nn.Module, _args: tuple[Any, ...], output: Any) -> Any:
        assert leave is not None
        if isinstance(output, tuple):
            return (leave(output[0]), *output[1:])
        return leave(output)

    module.register_forward_pre_hook(pre, with_kwargs=True)
    if leave is not None:
        module.register_forward_hook(post)


class VocabParallelEmbedding(nn.Module):
    """Embedding whose rows (vocabulary) are split over TP: masked local lookup, then all-reduce (Megatron)."""

    def __init__(self, full: nn.Embedding, group: Group) -> None:
        """Returns None; keeps this rank's rows of ``full``.

        Args:
            full: The model's embedding (vocabulary divisible by the TP size).
            group: The tensor-parallel group.
        """
        super().__init__()
        per_rank = full.num_embeddings // group.size
        self.group, self.start, self.end = group, group.rank * per_rank, (group.rank + 1) * per_rank
        self.embedding_dim = full.embedding_dim
        pad = full.padding_idx
        self.padding_idx = pad - self.start if pad is not None and self.start <= pad < self.end else None
        self.weight = nn.Parameter(shard_tensor(full.weight.detach(), 0, group.rank, group.size),
                                   requires_grad=full.weight.requires_grad)
        tag([self.weight], tiny_tp_dim=0, tiny_tp_fused=1)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Returns the embeddings of ``input_ids`` (identical on every TP rank)."""
        outside = (input_ids < self.start) | (input_ids >= self.end)
        local = (input_ids - self.start).masked_fill(outside, 0)
        out = F.embedding(local, self.weight, self.padding_idx).masked_fill(outside.unsqueeze(-1), 0.0)
        return reduce_from_tp(out, self.group)


def parallelize_attention_and_mlp(layer: nn.Module, group: Group, sp: bool, dense_mlp: bool) -> None:
    """Returns None after sharding a decoder layer's attention (and dense MLP) and hooking its regions.

    Args:
        layer: A Llama / Mixtral decoder layer.
        group: The tensor-parallel group.
        sp: Sequence parallelism.
        dense_mlp: Shard ``layer.mlp`` too (False for a MoE block, see :mod:`scaling_matrix.tiny.expert_parallel`).
    """
    blocks = [layer.self_attn] + ([layer.mlp] if dense_mlp else [])
    for block in blocks:
        for name in COLUMN + ROW:
            if hasattr(block, name):
                shard_linear(getattr(block, name), 0 if name in COLUMN else 1, group)
        wrap_region(block, lambda x: region_entry(x, group, sp), lambda x: region_exit(x, group, sp))
    if sp:
        tag([layer.input_layernorm.weight, layer.post_attention_layernorm.weight], tiny_tp_partial=True)


def parallelize_ends(lm: Any, group: Group, sp: bool) -> None:
    """Returns None after sharding embedding and ``lm_head`` over the vocabulary and placing SP's split (first
    decoder layer) and gather (before ``lm_head``).

    Args:
        lm: The ``*ForCausalLM`` model (vocabulary divisible by the TP size, checked in preflight).
        group: The tensor-parallel group.
        sp: Sequence parallelism.
    """
    lm.model.embed_tokens = VocabParallelEmbedding(lm.model.embed_tokens, group)
    shard_linear(lm.lm_head, 0, group)
    if sp:
        wrap_region(lm.model.layers[0], lambda x: scatter_to_sp(x, group, SEQ_DIM), None)
        tag([lm.model.norm.weight], tiny_tp_partial=True)
    wrap_region(lm.lm_head, lambda x: region_entry(x, group, sp), lambda y: gather_from_sp(y, group, -1))
