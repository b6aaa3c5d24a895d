"""Expert parallelism for the Mixtral MoE block: experts split over EP ranks, tokens moved with ``all_to_all``.

Layout (Megatron-Core "MoE parallel folding", ETP = TP): EP rank ``e`` owns experts
``[e * E/EP, (e+1) * E/EP)`` and, within its ETP (= TP) group, the rank's slice of each expert's FFN dimension
(``gate_up_proj`` rows of gate and up alike, ``down_proj`` columns). The Hugging Face block keeps its router (run
on the rank's own tokens, so with SP on its sequence chunk) and calls :class:`ParallelExperts`, which:

1. with TP > 1 gathers tokens, top-k expert ids and weights over the TP group (SP: all-gather, backward
   reduce-scatter; without SP the tokens are already replicated and only ``f`` applies);
2. sorts the ``(token, k)`` rows by expert and sends each row to the EP rank owning its expert
   (``all_to_all_single`` with per-rank counts exchanged first: dropless, no capacity factor);
3. runs each local expert (SwiGLU) on its rows (a partial sum over the FFN slices when ETP > 1);
4. sends the results back (the inverse ``all_to_all``), weights them by the router's top-k weights and sums the
   k contributions per token;
5. with TP > 1 sums the partial outputs over the TP group (SP: reduce-scatter back to the own chunk).

The backward of every step is the matching collective, so expert weights on one EP rank collect the gradients of
every data-parallel replica's tokens; they are scaled by 1/DP and summed over the expert data-parallel group
(Megatron's ``expert_gradient_scaling_factor``). No auxiliary load-balancing loss is used, so the loss equals the
1-rank Hugging Face model's.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from scaling_matrix.tiny.comm import (
    ParallelGroups,
    all_gather_cat,
    all_to_all,
    copy_to_tp,
    exchange,
    gather_from_sp,
    reduce_from_tp,
    scatter_to_sp,
)
from scaling_matrix.tiny.sharding import shard_tensor, tag


class ParallelExperts(nn.Module):
    """This rank's experts of one MoE layer (EP x ETP shards) with all-to-all token dispatch."""

    def __init__(self, experts: Any, groups: ParallelGroups, sp: bool) -> None:
        """Returns None; keeps this rank's shard of the Hugging Face ``MixtralExperts`` weights.

        Args:
            experts: The full ``MixtralExperts`` module (``gate_up_proj`` [E, 2F, H], ``down_proj`` [E, H, F]).
            groups: This rank's process groups (TP doubles as ETP).
            sp: Sequence parallelism (tokens arrive as sequence chunks).
        """
        super().__init__()
        self.tp, self.ep, self.sp = groups.tp, groups.ep, sp
        self.num_experts = experts.num_experts
        self.num_local = self.num_experts // self.ep.size
        first = self.ep.rank * self.num_local
        mine = slice(first, first + self.num_local)
        trainable = experts.gate_up_proj.requires_grad
        gate_up = shard_tensor(experts.gate_up_proj.detach()[mine], 1, self.tp.rank, self.tp.size, fused=2)
        down = shard_tensor(experts.down_proj.detach()[mine], 2, self.tp.rank, self.tp.size)
        self.gate_up_proj = nn.Parameter(gate_up, requires_grad=trainable)
        self.down_proj = nn.Parameter(down, requires_grad=experts.down_proj.requires_grad)
        tag([self.gate_up_proj], tiny_expert=True, tiny_tp_dim=1, tiny_tp_fused=2)
        tag([self.down_proj], tiny_expert=True, tiny_tp_dim=2, tiny_tp_fused=1)
        self.act_fn = experts.act_fn

    def forward(self, hidden_states: torch.Tensor, top_k_index: torch.Tensor,
                top_k_weights: torch.Tensor) -> torch.Tensor:
        """Returns the MoE output ``[tokens, hidden]`` for this rank's tokens.

        Args:
            hidden_states: ``[tokens, hidden]`` (this rank's tokens).
            top_k_index: ``[tokens, k]`` expert ids from the router.
            top_k_weights: ``[tokens, k]`` normalised router weights.
        """
        x, index, weights = self._enter(hidden_states, top_k_index, top_k_weights)
        tokens, k = index.shape
        flat = index.reshape(-1)
        order = torch.argsort(flat, stable=True)
        expert_of_row = flat[order]
        send_t = torch.bincount(expert_of_row // self.num_local, minlength=self.ep.size)
        recv_t = exchange(send_t, self.ep, [1] * self.ep.size, [1] * self.ep.size)
        send, recv = send_t.tolist(), recv_t.tolist()
        rows = all_to_all(x[order // k], self.ep, send, recv)
        local_ids = exchange(expert_of_row % self.num_local, self.ep, send, recv)
        results = all_to_all(self._compute(rows, local_ids), self.ep, recv, send)
        per_row = results.new_zeros((tokens * k, x.shape[-1])).index_copy(0, order, results)
        per_row = per_row.view(tokens, k, -1)
        out = per_row[:, 0] * weights[:, 0, None]
        for j in range(1, k):
            out = out + per_row[:, j] * weights[:, j, None]
        return self._leave(out.to(hidden_states.dtype))

    def _enter(self, x: torch.Tensor, index: torch.Tensor,
               weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Returns tokens, expert ids and weights of the whole TP group (identical on its ranks)."""
        if self.tp.size == 1:
            return x, index, weights
        if self.sp:
            x, weights = gather_from_sp(x, self.tp, 0), gather_from_sp(weights, self.tp, 0)
            index = all_gather_cat(index, self.tp, 0)
        return copy_to_tp(x, self.tp), index, copy_to_tp(weights, self.tp)

    def _leave(self, out: torch.Tensor) -> torch.Tensor:
        """Returns the summed (SP: and re-split) output of the TP group's partial expert outputs."""
        if self.tp.size == 1:
            return out
        out = reduce_from_tp(out, self.tp)
        return scatter_to_sp(out, self.tp, 0) if self.sp else out

    def _compute(self, rows: torch.Tensor, local_ids: torch.Tensor) -> torch.Tensor:
        """Returns each received row passed through its local expert (SwiGLU), in received order."""
        out = rows.new_zeros(rows.shape)
        for j in range(self.num_local):
            sel = (local_ids == j).nonzero().squeeze(1)
            if sel.numel() == 0:
                continue
            gate, up = F.linear(rows[sel], self.gate_up_proj[j]).chunk(2, dim=-1)
            out = out.index_copy(0, sel, F.linear(self.act_fn(gate) * up, self.down_proj[j]))
        return out


def parallelize_moe(block: nn.Module, groups: ParallelGroups, sp: bool) -> None:
    """Returns None after replacing a Mixtral MoE block's experts by :class:`ParallelExperts`.

    With SP (and TP > 1) the router sees only the rank's sequence chunk, so its gradient is a partial sum.

    Args:
        block: ``MixtralSparseMoeBlock`` (``gate`` router, ``experts``).
        groups: This rank's process groups.
        sp: Sequence parallelism.
    """
    block.experts = ParallelExperts(block.experts, groups, sp)
    if sp and groups.tp.size > 1:
        tag([block.gate.weight], tiny_tp_partial=True)
