"""Predict peak memory per GPU (or per rank on the tiny CPU engine) before submitting a cell.

GPU cells: the terms of :mod:`scaling_matrix.memory_terms` (each derived from the published
measurements in shared/reference/memory-measurements.md), for the workshop recipes' real defaults
(same file §2): bf16 weights, fp32 main grads of the trainable parameters, Adam state sharded only
with the distributed optimizer (off in NeMo's LoRA branch and with ``peft=none``), no activation
recomputation, dropout 0 (Llama and Mixtral configs), cross-entropy fusion off for the Llama LoRA
recipe (on for Mixtral). SQuAD micro-batches are padded to their longest sample only, so activations
are sized for the longest micro-batch a rank sees (:mod:`scaling_matrix.squad`). A GPU prediction
says what it predicts: ``nvidia_smi`` (allocator reserve and CUDA context included: the workshop
samples nvidia-smi on GPU 0); ``max_allocated_gib``/``reserved_gib`` give the other two.

CPU cells (tiny engine): fp32 everything, AdamW m + v (8 B), activations x2 (fp32), plus the measured
Python/torch runtime as overhead, which dominates at tiny sizes. Never compared with GPU numbers.

A per-model calibration factor (median measured/predicted over stored runs of the same device)
scales the sum.
"""

from __future__ import annotations

from dataclasses import dataclass

from scaling_matrix import memory_terms as T
from scaling_matrix import squad
from scaling_matrix.config.models import CellSpec
from scaling_matrix.recipes import Recipe

GIB = 1024**3
CPU_RUNTIME_GIB = 0.36  # fallback only: the flow/CLI pass the probed value (adapters/runtime_probe.py)
FITS_FRACTION = 0.9
#: recipes whose LoRA config disables cross-entropy fusion (memory-measurements.md §2, llama31_8b L311-312)
UNFUSED_CE = ("llama",)


@dataclass(frozen=True)
class MemoryPrediction:
    """Predicted peak memory of one cell per device, with its parts (GiB) and a verdict.

    ``target`` names the measured quantity the total predicts (``nvidia_smi``, or ``rss`` for the tiny
    CPU engine); ``overhead_gib`` is allocator slack + CUDA context (GPU) or the runtime (CPU);
    ``seq_tokens`` the padded micro-batch length activations were sized for, ``seq_quantile`` the
    quantile of the SQuAD length distribution it comes from (None: the configured length).
    """

    weights_gib: float
    grads_gib: float
    optimizer_gib: float
    activations_gib: float
    overhead_gib: float
    calibration: float
    capacity_gib: float | None
    target: str = "nvidia_smi"
    allocator_gib: float = 0.0
    seq_tokens: int | None = None
    seq_quantile: float | None = None

    @property
    def max_allocated_gib(self) -> float:
        """Return the uncalibrated predicted ``torch.cuda.max_memory_allocated`` (GiB)."""
        return self.weights_gib + self.grads_gib + self.optimizer_gib + self.activations_gib

    @property
    def reserved_gib(self) -> float:
        """Return the uncalibrated predicted ``torch.cuda.max_memory_reserved`` (GiB)."""
        return self.max_allocated_gib + self.allocator_gib

    @property
    def total_gib(self) -> float:
        """Return the calibrated predicted peak of :attr:`target` (GiB)."""
        return (self.max_allocated_gib + self.overhead_gib) * self.calibration

    @property
    def headroom_gib(self) -> float | None:
        """Return capacity minus the prediction (None when the capacity is unknown)."""
        return None if self.capacity_gib is None else self.capacity_gib - self.total_gib

    @property
    def verdict(self) -> str:
        """Return 'fits', 'tight' (>90% of capacity), 'oom' or 'unknown'."""
        if self.capacity_gib is None:
            return "unknown"
        if self.total_gib > self.capacity_gib:
            return "oom"
        return "tight" if self.total_gib > FITS_FRACTION * self.capacity_gib else "fits"


def local_params(cell: CellSpec, recipe: Recipe) -> tuple[float, float]:
    """Return (all, trainable) parameters held by one GPU of ``cell``."""
    dense, expert = recipe.params()
    held = dense / (cell.tp * cell.pp) + expert / (cell.ep * cell.layout.expert_tp * cell.pp)
    if cell.peft == "none":
        return held, held
    lora = recipe.lora_params(cell.lora_dim, tuple(cell.lora_targets) if cell.lora_targets else None)
    return held, lora / (cell.tp * cell.pp)


def gpu_setup(cell: CellSpec, recipe: Recipe, distributed_optimizer: bool) -> tuple[T.Setup, float | None]:
    """Return the memory setup of a GPU cell and the SQuAD quantile its sequence length comes from."""
    cap = cell.seq_length or recipe.seq_length
    samples = cell.max_steps * cell.global_batch_size // max(cell.dp, 1)
    seq, q = squad.peak_micro_batch_tokens(samples, cap, cell.micro_batch_size)
    arch = T.Arch(recipe.layers, recipe.hidden, recipe.ffn_hidden, recipe.heads, recipe.kv_heads, recipe.vocab,
                  gated=True, tied=recipe.tied_embeddings, experts=recipe.experts, topk=recipe.topk)
    trainable = None if cell.peft == "none" else float(
        recipe.lora_params(cell.lora_dim, tuple(cell.lora_targets) if cell.lora_targets else None))
    micro = max(1, cell.global_batch_size // (cell.micro_batch_size * max(cell.dp, 1)))
    setup = T.Setup(arch, seq=seq, mbs=cell.micro_batch_size, tp=cell.tp, pp=cell.pp, vpp=cell.vp or 1, cp=cell.cp,
                    ep=cell.ep, etp=cell.layout.expert_tp, dp=cell.dp, sp=cell.sp, micro_batches=micro, trainable=trainable,
                    distributed_optimizer=distributed_optimizer and cell.peft == "none",
                    fused_ce=not recipe.name.startswith(UNFUSED_CE), rank="first")
    return setup, q


def lora_sp_gather_bytes(cell: CellSpec, recipe: Recipe, seq: int) -> float:
    """Return the full-sequence copy LoRA keeps with SP: NeMo gathers the sequence before LoRA-A on
    ``linear_qkv`` (memory-measurements.md §2 "LoRA + SP", §3.11): s·b·h·2 B per layer, not split by TP."""
    if not (cell.sp and cell.peft != "none" and cell.tp > 1):
        return 0.0
    return 2.0 * seq * cell.micro_batch_size * recipe.hidden * recipe.layers / cell.pp


def predict(cell: CellSpec, recipe: Recipe, device: str, capacity_gib: float | None,
            calibration: float = 1.0, distributed_optimizer: bool = False,
            overhead_gib: float | None = None) -> MemoryPrediction:
    """Return the predicted peak memory per device of ``cell`` running ``recipe`` (see the module doc)."""
    if device != "gpu":
        return _predict_cpu(cell, recipe, capacity_gib, calibration, overhead_gib)
    setup, q = gpu_setup(cell, recipe, distributed_optimizer)
    t = T.terms(setup)
    act = t.activations + t.logits + lora_sp_gather_bytes(cell, recipe, setup.seq)
    slack = T.ALLOCATOR_SLACK * act
    context = T.CONTEXT_GIB * GIB if overhead_gib is None else overhead_gib * GIB
    return MemoryPrediction(weights_gib=t.weights / GIB, grads_gib=t.grads / GIB, optimizer_gib=t.optimizer / GIB,
                            activations_gib=act / GIB, overhead_gib=(slack + context) / GIB,
                            calibration=calibration, capacity_gib=capacity_gib, target="nvidia_smi",
                            allocator_gib=slack / GIB, seq_tokens=setup.seq, seq_quantile=q)


def activation_bytes(cell: CellSpec, recipe: Recipe, seq: int) -> float:
    """Return activation + logits bytes per rank for one micro-batch in flight (tiny CPU engine, fp32 x2 applied
    by the caller): Korthikanti's s·b·h·(10 + 24/t) per layer, MLP share scaled by width and top-k."""
    s, b, h, t = seq, cell.micro_batch_size, recipe.hidden, cell.tp
    mlp_share = 19.0 * (recipe.topk if recipe.experts else 1) * recipe.ffn_hidden / (3.5 * h)
    per_layer = s * b * h * ((15.0 + mlp_share) / t if cell.sp else (10.0 + (5.0 + mlp_share) / t))
    return per_layer / cell.cp * recipe.layers / cell.pp + 6.0 * s * b * recipe.vocab / t


def _predict_cpu(cell: CellSpec, recipe: Recipe, capacity_gib: float | None, calibration: float,
                 overhead_gib: float | None) -> MemoryPrediction:
    """Return the tiny CPU engine's prediction (per-rank RSS)."""
    held, trainable = local_params(cell, recipe)
    seq = cell.seq_length or recipe.seq_length
    return MemoryPrediction(weights_gib=4.0 * held / GIB, grads_gib=4.0 * trainable / GIB,
                            optimizer_gib=8.0 * trainable / GIB,
                            activations_gib=2.0 * activation_bytes(cell, recipe, seq) / GIB,
                            overhead_gib=overhead_gib if overhead_gib is not None else CPU_RUNTIME_GIB,
                            calibration=calibration, capacity_gib=capacity_gib, target="rss", seq_tokens=seq)


def calibration_factor(pairs: list[tuple[float, float]]) -> float:
    """Return the median of measured/predicted over ``pairs`` (1.0 when there are none)."""
    ratios = sorted(m / p for m, p in pairs if p > 0 and m > 0)
    if not ratios:
        return 1.0
    mid = len(ratios) // 2
    return ratios[mid] if len(ratios) % 2 else (ratios[mid - 1] + ratios[mid]) / 2
