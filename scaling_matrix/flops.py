"""Model FLOPs per token, model TFLOP/s per GPU and MFU, with the convention named. Pure.

Formula (training = forward + backward = 3 × forward, 2 FLOPs per multiply-add), per token of a
sequence of length ``s``, for a decoder with ``L`` layers, hidden ``h``, query width ``q`` (= heads ×
head dim = ``h`` here), key/value width ``kv`` (grouped-query attention), FFN width ``f`` (gated:
3 projections), vocabulary ``V``, and for MoE ``k`` experts routed per token (top-k)::

    linear    = 6 · [ L · ( h·(q + 2·kv) + q·h + 3·h·f·k ) + h·V ]      (k = 1 for dense models)
    attention = 12 · L · q · s · c                                       (QKᵀ and attention·V)
    dense     = linear + attention

``c`` is the **attention convention**: ``causal`` (0.5: only the lower triangle is computed;
Megatron-Bridge ``training/utils/flop_utils.py`` at v0.5.0/v0.6.0, and what NeMo AutoModel's numbers
imply), ``full`` (1: what NeMo 24.12–25.04's published pretraining pairs imply) or ``none`` (0: linear
layers only, ≈ 6 × matmul parameters; what NVIDIA's fine-tuning pairs on packed SQuAD imply, whose
per-sequence attention is negligible). Where a source states no formula, its convention is the one of
the three that reproduces its published pairs (the others miss by > 2 %: tests/core/test_flops.py).
Router, norms, embeddings lookups and softmax are not counted (< 0.1 %).

LoRA fine-tuning does not compute weight gradients of the frozen base, so its FLOPs are a fraction
of ``dense`` — the **LoRA convention**, named with every number:

* ``two_thirds``: ``2/3 · dense`` (DGX Cloud Benchmarking; Megatron-Bridge for Llama 3 70B LoRA);
* ``two_plus_r``: ``(2 + r)/3 · dense`` with ``r`` = trainable / frozen parameters (NeMo AutoModel,
  PR NVIDIA-NeMo/Automodel#786: "TFLOPS multiplier for PEFT: (1 + 1 + 0.0025) / 3").

NeMo 2's own FLOPs callback refuses PEFT runs (NeMo #9673), so NeMo 2 logs carry no LoRA TFLOPs.
``MFU = model TFLOP/s per GPU / peak TFLOP/s per GPU`` (``scaling_matrix.gpus``).
"""

from __future__ import annotations

from dataclasses import dataclass

from scaling_matrix.recipes import Recipe

ATTENTION = {"causal": 0.5, "full": 1.0, "none": 0.0}
LORA = ("two_thirds", "two_plus_r")


@dataclass(frozen=True)
class FlopConvention:
    """How model FLOPs are counted: attention term and LoRA fraction (see the module docstring)."""

    attention: str = "causal"
    lora: str = "two_thirds"

    def __post_init__(self) -> None:
        if self.attention not in ATTENTION:
            raise ValueError(f"attention convention {self.attention!r}: use one of {sorted(ATTENTION)}")
        if self.lora not in LORA:
            raise ValueError(f"LoRA convention {self.lora!r}: use one of {list(LORA)}")

    def describe(self, peft: str | None = None) -> str:
        """Return the convention as one label, e.g. 'attention=causal, lora=2/3'."""
        lora = {"two_thirds": "2/3", "two_plus_r": "(2+r)/3"}[self.lora]
        return f"attention={self.attention}" + (f", lora={lora}" if peft in (None, "lora") else "")


DEFAULT_CONVENTION = FlopConvention()


def linear_flops_per_token(recipe: Recipe) -> float:
    """Return the FLOPs of every weight matmul per token (forward + backward)."""
    q, kv, h = recipe.hidden, recipe.kv_dim, recipe.hidden
    active = recipe.topk if recipe.experts else 1
    per_layer = h * (q + 2 * kv) + q * h + 3 * h * recipe.ffn_hidden * active
    return 6.0 * (recipe.layers * per_layer + h * recipe.vocab)


def attention_flops_per_token(recipe: Recipe, seq_length: int, attention: str) -> float:
    """Return the attention-score FLOPs per token (QKᵀ and attention·V) under ``attention``."""
    return 12.0 * recipe.layers * recipe.hidden * seq_length * ATTENTION[attention]


def trainable_ratio(recipe: Recipe, lora_dim: int | None = None, lora_targets: tuple[str, ...] | None = None) -> float:
    """Return LoRA parameters / frozen parameters of ``recipe`` (the ``r`` of the (2+r)/3 rule)."""
    dense, expert = recipe.params()
    return recipe.lora_params(lora_dim, lora_targets) / (dense + expert)


def lora_fraction(convention: FlopConvention, ratio: float) -> float:
    """Return the fraction of dense training FLOPs a LoRA step costs under ``convention``."""
    return 2.0 / 3.0 if convention.lora == "two_thirds" else (2.0 + ratio) / 3.0


def flops_per_token(recipe: Recipe, seq_length: int, peft: str, convention: FlopConvention = DEFAULT_CONVENTION,
                    lora_dim: int | None = None, lora_targets: tuple[str, ...] | None = None,
                    ratio: float | None = None) -> float:
    """Return the model training FLOPs per token of one step (see the module docstring); ``ratio``
    overrides the computed LoRA trainable ratio (a source that states its own ``r``)."""
    dense = linear_flops_per_token(recipe) + attention_flops_per_token(recipe, seq_length, convention.attention)
    if peft != "lora":
        return dense
    r = trainable_ratio(recipe, lora_dim, lora_targets) if ratio is None else ratio
    return dense * lora_fraction(convention, r)


def model_tflops_per_gpu(tokens_per_s_per_gpu: float | None, per_token: float | None) -> float | None:
    """Return model TFLOP/s per GPU from throughput and FLOPs per token (None when either is unknown)."""
    if tokens_per_s_per_gpu is None or per_token is None:
        return None
    return tokens_per_s_per_gpu * per_token / 1e12


def tokens_per_s_per_gpu(tflops_per_gpu: float, per_token: float) -> float:
    """Return the tokens/s per GPU that ``tflops_per_gpu`` means at ``per_token`` FLOPs per token."""
    return tflops_per_gpu * 1e12 / per_token


def mfu(tflops_per_gpu: float | None, peak: float | None) -> float | None:
    """Return model FLOPs utilisation (0..1) or None when the peak or the throughput is unknown."""
    if tflops_per_gpu is None or not peak:
        return None
    return tflops_per_gpu / peak
