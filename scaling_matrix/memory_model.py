"""Predict peak memory per GPU (or per rank on the tiny CPU engine) before submitting a cell.

Components (bytes, per GPU):
  * weights: bf16 (2 B) x local parameters; dense params sharded by TP x PP (vocab-parallel
    embeddings included), expert params by EP x ETP x PP (ETP defaults to TP).
  * gradients: fp32 main-grad buffer (4 B) x local *trainable* parameters (LoRA-aware).
  * optimizer: Adam fp32 master + m + v (12 B) x local trainable params, divided by DP only
    with a distributed optimizer (the LoRA branch and ``peft=none`` keep it off: nemo.md §3).
  * activations: Korthikanti et al. (2022) with flash attention, per layer and micro-batch:
    s·b·h·34/t with sequence parallel, s·b·h·(10 + 24/t) without; the MLP share (~19 of 34)
    scales with top-k for MoE. Times layers/PP. Plus logits: 6·s·b·V/t (bf16 + fp32 loss).
  * overhead: CUDA context/NCCL/allocator (GPU) or the Python+torch runtime (tiny CPU engine).
A per-model calibration factor (median measured/predicted over stored runs) scales the sum.
"""

from __future__ import annotations

from dataclasses import dataclass

from scaling_matrix.config.models import CellSpec
from scaling_matrix.recipes import Recipe

GIB = 1024**3
GPU_OVERHEAD_GIB = 2.5
CPU_RUNTIME_GIB = 0.36  # fallback only: the flow/CLI pass the probed value (adapters/runtime_probe.py)
FITS_FRACTION = 0.9


@dataclass(frozen=True)
class MemoryPrediction:
    """Predicted peak memory of one cell per device, with its parts (GiB) and a verdict."""

    weights_gib: float
    grads_gib: float
    optimizer_gib: float
    activations_gib: float
    overhead_gib: float
    calibration: float
    capacity_gib: float | None

    @property
    def total_gib(self) -> float:
        """Return the calibrated predicted peak (GiB)."""
        parts = self.weights_gib + self.grads_gib + self.optimizer_gib + self.activations_gib
        return (parts + self.overhead_gib) * self.calibration

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
    etp = cell.tp
    held = dense / (cell.tp * cell.pp) + expert / (cell.ep * etp * cell.pp)
    if cell.peft == "none":
        return held, held
    lora = recipe.lora_params(cell.lora_dim, tuple(cell.lora_targets) if cell.lora_targets else None)
    return held, lora / (cell.tp * cell.pp)


def activation_bytes(cell: CellSpec, recipe: Recipe, seq: int) -> float:
    """Return activation + logits bytes per GPU for one micro-batch in flight."""
    s, b, h, t = seq, cell.micro_batch_size, recipe.hidden, cell.tp
    mlp_share = 19.0 * (recipe.topk if recipe.experts else 1) * recipe.ffn_hidden / (3.5 * h)
    per_layer = s * b * h * ((15.0 + mlp_share) / t if cell.sp else (10.0 + (5.0 + mlp_share) / t))
    if cell.cp > 1:
        per_layer /= cell.cp
    logits = 6.0 * s * b * recipe.vocab / t
    return per_layer * recipe.layers / cell.pp + logits


def predict(cell: CellSpec, recipe: Recipe, device: str, capacity_gib: float | None,
            calibration: float = 1.0, distributed_optimizer: bool = False,
            overhead_gib: float | None = None) -> MemoryPrediction:
    """Return the predicted peak memory per device of ``cell`` running ``recipe``.

    Note:
        GPU cells (NeMo): bf16 weights/activations, fp32 main grads, Adam master+m+v (12 B).
        CPU cells (tiny engine): fp32 everything, AdamW m+v only (8 B), and the measured
        Python/torch runtime as overhead, which dominates at tiny sizes.
    """
    held, trainable = local_params(cell, recipe)
    seq = cell.seq_length or recipe.seq_length
    gpu = device == "gpu"
    opt_bytes = 12.0 if gpu else 8.0
    optimizer = opt_bytes * trainable / (cell.dp if distributed_optimizer and cell.peft == "none" else 1)
    act_scale = 1.0 if gpu else 2.0  # fp32 activations on CPU
    return MemoryPrediction(weights_gib=(2.0 if gpu else 4.0) * held / GIB, grads_gib=4.0 * trainable / GIB,
                            optimizer_gib=optimizer / GIB,
                            activations_gib=act_scale * activation_bytes(cell, recipe, seq) / GIB,
                            overhead_gib=overhead_gib if overhead_gib is not None
                            else GPU_OVERHEAD_GIB if gpu else CPU_RUNTIME_GIB,
                            calibration=calibration, capacity_gib=capacity_gib)


def calibration_factor(pairs: list[tuple[float, float]]) -> float:
    """Return the median of measured/predicted over ``pairs`` (1.0 when there are none)."""
    ratios = sorted(m / p for m, p in pairs if p > 0 and m > 0)
    if not ratios:
        return 1.0
    mid = len(ratios) // 2
    return ratios[mid] if len(ratios) % 2 else (ratios[mid - 1] + ratios[mid]) / 2
