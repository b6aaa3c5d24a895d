"""Registry of tiny-engine model factories (the stand-ins for NeMo's ``--factory`` recipes).

A factory fixes the architecture (Hugging Face ``model_type`` plus config kwargs) and the recipe defaults that
NeMo's recipes carry (LoRA targets, dim, alpha, learning rates). The model is always built through
``AutoConfig.for_model(model_type, **config)`` and loaded through ``AutoModelForCausalLM``.

* ``tiny_llama``: dense Llama architecture (2 layers, hidden 64, 4 heads / 2 KV heads); LoRA by default on all
  attention and MLP projections (NeMo's llama31_8b recipe). Tensor parallelism up to 2 (KV heads).
* ``tiny_mixtral``: Mixtral architecture (2 layers, hidden 64, 8 heads / 4 KV heads, 8 experts of FFN 128, top-2
  routing, no router jitter, no auxiliary load-balancing loss); LoRA by default on ``linear_qkv`` and
  ``linear_proj`` only (the targets of NeMo's mixtral_8x7b recipe), dim 8 and alpha 16 like ``tiny_llama``
  (the recipe's 32/32 learns too slowly at this size). Expert
  projections are fused 3-D parameters in transformers 5, so LoRA cannot target them (``linear_fc1``/
  ``linear_fc2`` are rejected). Tensor parallelism up to 4, expert parallelism 1, 2, 4 or 8.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from scaling_matrix.tiny import tokenizer

# NeMo (Megatron) LoRA target names -> Hugging Face Llama module names.
LLAMA_TARGET_ALIASES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "linear_qkv": ("q_proj", "k_proj", "v_proj"),
        "linear_proj": ("o_proj",),
        "linear_fc1": ("gate_proj", "up_proj"),
        "linear_fc2": ("down_proj",),
    }
)


@dataclass(frozen=True)
class FactorySpec:
    """One factory (architecture plus recipe defaults).

    Attributes:
        name: Factory name as passed to ``--factory`` / ``model=``.
        model_type: Hugging Face ``model_type`` (``llama``; later ``mixtral``).
        config: Keyword arguments for ``AutoConfig.for_model`` (architecture only).
        lora_target_modules: Default LoRA targets (Hugging Face module names).
        lora_dim: Default LoRA rank (NeMo ``peft.dim``).
        lora_alpha: Default LoRA alpha (NeMo ``peft.alpha``).
        lora_lr: Recipe learning rate of the LoRA branch; the CLI's ``peft=none`` keeps it, as in NeMo.
        full_lr: Recipe learning rate of the ``peft_scheme='none'`` branch.
        target_aliases: NeMo target names mapped to Hugging Face module names.
        is_moe: Whether the architecture has experts (expert parallelism could apply).
    """

    name: str
    model_type: str
    config: Mapping[str, Any]
    lora_target_modules: tuple[str, ...]
    lora_dim: int = 8
    lora_alpha: int = 16
    lora_lr: float = 3e-3
    full_lr: float = 1e-3
    target_aliases: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: LLAMA_TARGET_ALIASES)
    is_moe: bool = False

    @property
    def num_experts(self) -> int:
        """Returns the experts per MoE layer (0 for a dense model)."""
        return int(self.config.get("num_local_experts", 0)) if self.is_moe else 0


_SPECIAL_IDS = {
    "vocab_size": tokenizer.VOCAB_SIZE,
    "bos_token_id": tokenizer.BOS_ID,
    "eos_token_id": tokenizer.EOS_ID,
    "pad_token_id": tokenizer.PAD_ID,
}

TINY_LLAMA = FactorySpec(
    name="tiny_llama",
    model_type="llama",
    config=MappingProxyType(
        {
            **_SPECIAL_IDS,
            "hidden_size": 64,
            "intermediate_size": 176,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 2048,
            "rms_norm_eps": 1e-5,
            "initializer_range": 0.125,
            "tie_word_embeddings": False,
        }
    ),
    lora_target_modules=("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
)

# Mixtral: expert projections are fused 3-D parameters (not nn.Linear), so only attention names translate.
MIXTRAL_TARGET_ALIASES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {"linear_qkv": ("q_proj", "k_proj", "v_proj"), "linear_proj": ("o_proj",)}
)
UNSUPPORTED_TARGETS: Mapping[str, frozenset[str]] = MappingProxyType(
    {"mixtral": frozenset({"linear_fc1", "linear_fc2", "gate_up_proj", "down_proj", "gate_proj", "up_proj",
                           "experts", "gate"})}
)

TINY_MIXTRAL = FactorySpec(
    name="tiny_mixtral",
    model_type="mixtral",
    config=MappingProxyType(
        {
            **_SPECIAL_IDS,
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 8,
            "num_key_value_heads": 4,
            "num_local_experts": 8,
            "num_experts_per_tok": 2,
            "max_position_embeddings": 2048,
            "rms_norm_eps": 1e-5,
            "initializer_range": 0.125,
            "tie_word_embeddings": False,
            "sliding_window": None,
            "router_jitter_noise": 0.0,
            "output_router_logits": False,
            "router_aux_loss_coef": 0.0,
        }
    ),
    lora_target_modules=("q_proj", "k_proj", "v_proj", "o_proj"),
    target_aliases=MIXTRAL_TARGET_ALIASES,
    is_moe=True,
)

FACTORIES: Mapping[str, FactorySpec] = MappingProxyType({f.name: f for f in (TINY_LLAMA, TINY_MIXTRAL)})


def get_factory(name: str) -> FactorySpec:
    """Returns the factory registered under ``name``.

    Args:
        name: Factory name, e.g. ``tiny_llama``.

    Raises:
        ValueError: The name is not registered.
    """
    try:
        return FACTORIES[name]
    except KeyError:
        known = ", ".join(sorted(FACTORIES))
        raise ValueError(f"unknown factory '{name}' (tiny engine factories: {known})") from None


def resolve_targets(spec: FactorySpec, targets: list[str] | None) -> list[str]:
    """Returns Hugging Face module names for LoRA, translating NeMo names (``linear_qkv``...).

    Args:
        spec: The factory.
        targets: Requested targets (NeMo or Hugging Face names); None for the factory default.

    Raises:
        ValueError: A target the architecture cannot carry LoRA on (Mixtral expert projections).
    """
    if not targets:
        return list(spec.lora_target_modules)
    out: list[str] = []
    for name in targets:
        if name in UNSUPPORTED_TARGETS.get(spec.model_type, frozenset()):
            raise ValueError(f"LoRA target '{name}' is not supported for factory '{spec.name}' (expert "
                             "projections are fused 3-D parameters); use linear_qkv and/or linear_proj")
        for hf_name in spec.target_aliases.get(name, (name,)):
            if hf_name not in out:
                out.append(hf_name)
    return out
