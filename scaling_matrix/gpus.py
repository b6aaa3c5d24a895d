"""Peak dense tensor-core throughput per GPU type, the denominator of MFU. Pure data.

Values are NVIDIA's datasheet numbers **without sparsity** (datasheets print the 2:4-sparse figure,
twice these), per GPU, in TFLOP/s:

* A100 SXM/PCIe: BF16 312 (https://www.nvidia.com/en-us/data-center/a100/); no FP8.
* H100 SXM: BF16 989.4, FP8 1978.9; H100 PCIe: BF16 756, FP8 1513
  (https://www.nvidia.com/en-us/data-center/h100/). H200 has the H100 SXM compute.
  The H100 SXM values are also what NVIDIA's DGX Cloud Benchmarking MFU figures imply
  (tests/core/test_flops.py reproduces them within 2 %).
* B200 (HGX): BF16 2250, FP8 4500; GB200 (NVL72, per GPU): BF16 2500, FP8 5000
  (https://www.nvidia.com/en-us/data-center/hgx/, /gb200-nvl72/). Not cross-checked by any
  published MFU pair here (the B200/GB200 references publish TFLOP/s only).

A profile names its ``gpu_type`` (a key below or an alias) and may override the peak with
``peak_tflops`` (BF16, the precision every rendered recipe runs: ``bf16_mixed``).
"""

from __future__ import annotations

import re

PEAK_TFLOPS: dict[str, dict[str, float]] = {
    "a100": {"bf16": 312.0},
    "h100-sxm": {"bf16": 989.4, "fp8": 1978.9},
    "h100-pcie": {"bf16": 756.0, "fp8": 1513.0},
    "h200": {"bf16": 989.4, "fp8": 1978.9},
    "b200": {"bf16": 2250.0, "fp8": 4500.0},
    "gb200": {"bf16": 2500.0, "fp8": 5000.0},
}
ALIASES = {"h100": "h100-sxm", "h100-nvl": "h100-pcie"}
#: What every renderer here runs (NeMo 2 and Megatron-Bridge recipes default to ``bf16_mixed``).
PRECISION = "bf16"


def gpu_key(label: str | None) -> str | None:
    """Return the canonical GPU type of ``label`` ('NVIDIA H100 80GB HBM3 SXM5' -> 'h100-sxm'), or None."""
    if not label:
        return None
    text = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")
    if text in PEAK_TFLOPS:
        return text
    if text in ALIASES:
        return ALIASES[text]
    words = set(text.split("-"))
    family = next((f for f in ("gb200", "b200", "h200", "h100", "a100") if f in words), None)
    if family == "h100":
        return "h100-pcie" if words & {"pcie", "nvl"} else "h100-sxm"
    return family


def peak_tflops(gpu_type: str | None, precision: str = PRECISION, override: float | None = None) -> float | None:
    """Return the peak TFLOP/s of one ``gpu_type`` GPU at ``precision`` (``override`` wins), or None."""
    if override is not None:
        return override
    key = gpu_key(gpu_type)
    return PEAK_TFLOPS.get(key, {}).get(precision) if key else None
