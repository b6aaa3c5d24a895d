"""Megatron-style parallel layout of a tiny-engine job: sizes, rank coordinates, groups and Megatron's rules.

Torch-free, so :mod:`scaling_matrix.tiny.preflight` can reject a bad layout in well under a second.

Rank order follows Megatron-Core's default ``tp-cp-ep-dp-pp`` (PP = CP = 1 here):

* dense side: ``rank = tp_rank + TP * dp_rank`` with ``DP = world / (TP * PP * CP)``;
* expert side ("MoE parallel folding"): ``rank = etp_rank + ETP * (ep_rank + EP * edp_rank)`` with
  ``EDP = world / (ETP * EP * PP)``. EP is not carved out of DP. ``ETP`` defaults to ``TP`` (MCore's default) and
  the tiny engine only supports that default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Megatron-Core / NeMo texts (reference/nemo.md section 5; MCore parallel_state.py, model_parallel_config.py).
SP_WITHOUT_TP = "Can not use sequence paralllelism without tensor parallelism"  # (sic)
EP_TP_WITHOUT_SP = "When using expert parallelism and tensor parallelism, sequence parallelism must be used"


@dataclass(frozen=True)
class ParallelLayout:
    """Sizes of every parallel dimension of one job.

    Attributes:
        world: Number of processes (``trainer.devices x trainer.num_nodes``).
        tp: Tensor-parallel size.
        ep: Expert-parallel size.
        etp: Expert tensor-parallel size as given (None = Megatron's default, ``tp``).
        sp: Sequence parallelism.
        pp: Pipeline-parallel size (only 1 runs).
        cp: Context-parallel size (only 1 runs).
    """

    world: int = 1
    tp: int = 1
    ep: int = 1
    etp: int | None = None
    sp: bool = False
    pp: int = 1
    cp: int = 1

    @property
    def expert_tp(self) -> int:
        """Returns the effective expert tensor-parallel size (``etp`` or, by default, ``tp``)."""
        return self.tp if self.etp is None else self.etp

    @property
    def dp(self) -> int:
        """Returns the dense data-parallel size, ``world / (TP * PP * CP)``."""
        return max(1, self.world // (self.tp * self.pp * self.cp))

    @property
    def edp(self) -> int:
        """Returns the expert data-parallel size, ``world / (ETP * EP * PP)``."""
        return max(1, self.world // (self.expert_tp * self.ep * self.pp))

    @property
    def model_parallel(self) -> bool:
        """Returns True when any model parallelism (TP, EP, SP) is active."""
        return self.tp > 1 or self.ep > 1 or self.expert_tp > 1 or self.sp

    def coords(self, rank: int) -> dict[str, int]:
        """Returns ``{tp, dp, etp, ep, edp}`` ranks of global ``rank``.

        Args:
            rank: Global rank.
        """
        etp = self.expert_tp
        return {"tp": rank % self.tp, "dp": rank // self.tp, "etp": rank % etp,
                "ep": (rank // etp) % self.ep, "edp": rank // (etp * self.ep)}

    def groups(self) -> dict[str, list[list[int]]]:
        """Returns the rank lists of every group kind (``tp``, ``dp``, ``etp``, ``ep``, ``edp``), in a fixed order."""
        ranks = range(self.world)
        out: dict[str, list[list[int]]] = {}
        for kind in ("tp", "dp", "etp", "ep", "edp"):
            others = [k for k in ("tp", "dp") if k != kind] if kind in ("tp", "dp") else \
                [k for k in ("etp", "ep", "edp") if k != kind]
            members: dict[tuple[int, ...], list[int]] = {}
            for r in ranks:
                c = self.coords(r)
                members.setdefault(tuple(c[k] for k in others), []).append(r)
            out[kind] = list(members.values())
        return out

    def describe(self) -> dict[str, Any]:
        """Returns the layout as a JSON-serialisable mapping (for ``tiny_summary.json``)."""
        return {"world": self.world, "dp": self.dp, "tp": self.tp, "pp": self.pp, "cp": self.cp, "ep": self.ep,
                "etp": self.expert_tp, "edp": self.edp, "sp": self.sp}


def check_megatron_rules(layout: ParallelLayout, num_experts: int) -> None:
    """Returns None when the layout passes Megatron-Core's checks, raised in Megatron's order and words.

    Args:
        layout: The job's layout.
        num_experts: Experts per MoE layer (0 for a dense model).

    Raises:
        RuntimeError: TP*PP*CP or ETP*EP*PP does not divide the world size.
        ValueError: SP without TP, EP with TP but without SP, EP not dividing the expert count.
    """
    model_size = layout.tp * layout.pp * layout.cp
    if layout.world % model_size:
        raise RuntimeError(f"world_size ({layout.world}) is not divisible by {model_size}")
    expert_size = layout.expert_tp * layout.ep * layout.pp
    if layout.world % expert_size:
        raise RuntimeError(f"decoder world_size ({layout.world}) is not divisible by "
                           f"expert_tensor_model_pipeline_parallel size ({expert_size})")
    if layout.sp and layout.tp <= 1:
        raise ValueError(SP_WITHOUT_TP)
    if layout.ep > 1 and layout.tp > 1 and not layout.sp:
        raise ValueError(EP_TP_WITHOUT_SP)
    if layout.ep > 1 and num_experts == 0:
        raise ValueError(f"expert_model_parallel_size ({layout.ep}) needs a Mixture-of-Experts model; "
                         "this factory is dense")
    if num_experts and num_experts % layout.ep:
        raise ValueError(f"Expected num_moe_experts {num_experts} to be divisible by "
                         f"expert_model_parallel_size {layout.ep}.")


def check_engine_support(layout: ParallelLayout, config: Mapping[str, Any], seq_length: int) -> None:
    """Returns None when the tiny engine can shard the model this way (beyond Megatron's own rules).

    Args:
        layout: The job's layout.
        config: The factory's Hugging Face config kwargs.
        seq_length: ``data.seq_length``.

    Raises:
        ValueError: ETP other than TP, or a model dimension that TP / EP does not divide.
    """
    if layout.etp is not None and layout.etp != layout.tp:
        raise ValueError(f"expert_tensor_parallel_size ({layout.etp}) must equal tensor_model_parallel_size "
                         f"({layout.tp}) in the tiny engine (Megatron's default ETP = TP)")
    tp = layout.tp
    dims = {"num_attention_heads": config["num_attention_heads"],
            "num_query_groups (num_key_value_heads)": config["num_key_value_heads"],
            "ffn_hidden_size (intermediate_size)": config["intermediate_size"],
            "vocab_size": config["vocab_size"]}
    for name, value in dims.items():
        if value % tp:
            raise ValueError(f"{name} ({value}) must be divisible by tensor_model_parallel_size ({tp})")
    if layout.sp and seq_length % tp:
        raise ValueError(f"data.seq_length ({seq_length}) must be divisible by tensor_model_parallel_size "
                         f"({tp}) with sequence parallelism")


def check_batch_divisible(global_batch_size: int, micro_batch_size: int, data_parallel_size: int) -> None:
    """Returns None when Megatron's micro-batch calculator accepts the batch sizes.

    Args:
        global_batch_size: ``data.global_batch_size``.
        micro_batch_size: ``data.micro_batch_size``.
        data_parallel_size: DP size, ``world / (TP * PP * CP)``.

    Raises:
        AssertionError: With Megatron-Core's message text.
    """
    if global_batch_size % (micro_batch_size * data_parallel_size) != 0:
        raise AssertionError(
            f"global batch size ({global_batch_size}) is not divisible by micro batch size ({micro_batch_size})"
            f" times data parallel size ({data_parallel_size})"
        )
