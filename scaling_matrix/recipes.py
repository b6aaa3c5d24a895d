"""Recipe registry: NeMo factories (and the tiny engine's) with their architecture and defaults.

Pure data used by the command builder, pre-submit validation and the memory predictor. Facts
from NeMo v2.4.0 recipes (reference/nemo.md §2) and the models' HF configs. Extend by adding
an entry to :data:`RECIPES`.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Recipe(BaseModel):
    """One fine-tuning recipe: architecture facts plus the recipe's LoRA/full-FT defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    family: str = Field(pattern="^(dense|moe)$")
    layers: int
    hidden: int
    ffn_hidden: int
    heads: int
    kv_heads: int
    vocab: int
    experts: int = 0
    topk: int = 0
    tied_embeddings: bool = False
    seq_length: int = 2048
    lora_dim: int = 8
    lora_alpha: int = 16
    lora_targets: tuple[str, ...] = ("linear_qkv", "linear_proj", "linear_fc1", "linear_fc2")
    default_ep: int = 1
    full_ft_distributed_optimizer: bool = True  # only with --factory "...(peft_scheme='none')"
    hf_architecture: str | None = None  # the HF config's architectures[0] (AutoModel capability lookup)

    @property
    def kv_dim(self) -> int:
        """Return the key/value projection width (grouped-query attention)."""
        return self.hidden * self.kv_heads // self.heads

    def linear_shapes(self) -> dict[str, tuple[int, int]]:
        """Return (in, out) of each Megatron linear in one layer (fc1 fuses gate and up)."""
        return {"linear_qkv": (self.hidden, self.hidden + 2 * self.kv_dim),
                "linear_proj": (self.hidden, self.hidden),
                "linear_fc1": (self.hidden, 2 * self.ffn_hidden),
                "linear_fc2": (self.ffn_hidden, self.hidden)}

    def params(self) -> tuple[int, int]:
        """Return (dense parameters, expert parameters) of the whole model."""
        shapes = self.linear_shapes()
        attn = sum(i * o for k, (i, o) in shapes.items() if k in ("linear_qkv", "linear_proj"))
        mlp = sum(i * o for k, (i, o) in shapes.items() if k in ("linear_fc1", "linear_fc2"))
        embed = self.vocab * self.hidden * (1 if self.tied_embeddings else 2)
        per_layer_dense = attn + 2 * self.hidden + (self.hidden * self.experts if self.experts else mlp)
        expert = self.layers * self.experts * mlp if self.experts else 0
        return embed + self.layers * per_layer_dense + self.hidden, expert

    def lora_params(self, dim: int | None = None, targets: tuple[str, ...] | None = None) -> int:
        """Return the LoRA parameter count (A: dim x in, B: out x dim per targeted linear)."""
        dim = dim or self.lora_dim
        shapes = self.linear_shapes()
        per_layer = 0
        for t in targets or self.lora_targets:
            i, o = shapes[t]
            per_layer += dim * (i + o) * (self.experts if self.experts and t in ("linear_fc1", "linear_fc2") else 1)
        return self.layers * per_layer


RECIPES: dict[str, Recipe] = {
    "llama31_8b": Recipe(name="llama31_8b", family="dense", layers=32, hidden=4096, ffn_hidden=14336,
                         heads=32, kv_heads=8, vocab=128256, hf_architecture="LlamaForCausalLM"),
    "llama31_70b": Recipe(name="llama31_70b", family="dense", layers=80, hidden=8192, ffn_hidden=28672,
                          heads=64, kv_heads=8, vocab=128256, hf_architecture="LlamaForCausalLM"),
    # architecture only (published yardstick: NeMo 24.12 Llama2-7B LoRA); no workshop factory uses it
    "llama2_7b": Recipe(name="llama2_7b", family="dense", layers=32, hidden=4096, ffn_hidden=11008, heads=32,
                        kv_heads=32, vocab=32000, seq_length=4096, hf_architecture="LlamaForCausalLM"),
    "mixtral_8x7b": Recipe(name="mixtral_8x7b", family="moe", layers=32, hidden=4096, ffn_hidden=14336,
                           heads=32, kv_heads=8, vocab=32000, experts=8, topk=2, lora_dim=32, lora_alpha=32,
                           lora_targets=("linear_qkv", "linear_proj"), default_ep=8,
                           hf_architecture="MixtralForCausalLM"),
    "tiny_llama": Recipe(name="tiny_llama", family="dense", layers=2, hidden=64, ffn_hidden=176, heads=4,
                         kv_heads=2, vocab=260, seq_length=128),
    "tiny_mixtral": Recipe(name="tiny_mixtral", family="moe", layers=2, hidden=64, ffn_hidden=128, heads=8,
                           kv_heads=4, vocab=260, experts=8, topk=2, seq_length=128,
                           lora_targets=("linear_qkv", "linear_proj")),
}


def recipe_for(factory: str) -> Recipe | None:
    """Return the registered recipe of ``factory`` (arguments like ``(peft_scheme=...)`` ignored)."""
    return RECIPES.get(factory.split("(", 1)[0])
