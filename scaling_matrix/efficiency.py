"""Per-cell throughput and efficiency (tokens/s/GPU, model TFLOP/s/GPU, MFU) and the yardstick table. Pure.

Computed at report time from stored cell rows, so the FLOP convention can be chosen when reading
(``report --attention-flops/--lora-flops``); the stored measurement (tokens/s/GPU) never depends on it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from scaling_matrix.flops import DEFAULT_CONVENTION, FlopConvention, flops_per_token, mfu, model_tflops_per_gpu
from scaling_matrix.gpus import peak_tflops
from scaling_matrix.recipes import recipe_for
from scaling_matrix.yardstick import DEFAULT_THRESHOLD, METRIC, Reference, compare_cell, load_references

EFFICIENCY_COLUMNS = ["flops_per_token", "model_tflops_per_gpu", "mfu", "peak_tflops_per_gpu", "flops_convention"]


def efficiency(row: dict[str, Any], convention: FlopConvention = DEFAULT_CONVENTION) -> dict[str, Any]:
    """Return FLOPs per token, model TFLOP/s per GPU and MFU of one cell row (None where unknown)."""
    out: dict[str, Any] = dict.fromkeys(EFFICIENCY_COLUMNS)
    recipe = recipe_for(str(row.get("recipe") or row.get("model") or ""))
    seq = row.get("seq_length")
    if recipe is None or not seq:
        return out
    targets = tuple(row["lora_targets"]) if row.get("lora_targets") else None
    per_token = flops_per_token(recipe, int(seq), "lora" if row.get("peft") == "lora" else "none", convention,
                                row.get("lora_dim"), targets)
    tflops = model_tflops_per_gpu(row.get(METRIC), per_token)
    peak = row.get("peak_tflops") or (peak_tflops(row.get("gpu_type"), row.get("precision") or "bf16")
                                      if row.get("device") == "gpu" else None)
    out.update(flops_per_token=per_token, model_tflops_per_gpu=tflops, mfu=mfu(tflops, peak),
               peak_tflops_per_gpu=peak, flops_convention=convention.describe(row.get("peft")))
    return out


def with_efficiency(rows: Iterable[dict[str, Any]], convention: FlopConvention = DEFAULT_CONVENTION
                    ) -> list[dict[str, Any]]:
    """Return ``rows`` with the efficiency columns added."""
    return [{**row, **efficiency(row, convention)} for row in rows]


def reference_fields(ref: Reference | None) -> dict[str, Any]:
    """Return the reference columns of one comparison (all None without a reference)."""
    if ref is None:
        return {"reference_id": None, "reference_source": None, "reference_url": None,
                "reference_container": None, "reference_tokens_per_s_per_gpu": None}
    return {"reference_id": ref.id, "reference_source": ref.source, "reference_url": ref.url,
            "reference_container": ref.container, "reference_tokens_per_s_per_gpu": ref.tokens_per_s_per_gpu}


def yardstick_rows(rows: Iterable[dict[str, Any]], threshold: float = DEFAULT_THRESHOLD,
                   refs: tuple[Reference, ...] | None = None) -> list[dict[str, Any]]:
    """Return one yardstick row per cell: our tokens/s/GPU, the reference's, ratio, verdict, caveats."""
    refs = load_references()[1] if refs is None else refs
    out = []
    for row in rows:
        c = compare_cell(row, refs, threshold)
        out.append({"cell_id": c.cell_id, "gpu_type": row.get("gpu_type"), "workload": row.get("workload"),
                    "tokens_per_s_per_gpu": c.value, **reference_fields(c.reference), "ratio": c.ratio,
                    "below_threshold": c.below, "threshold": threshold, "verdict": c.verdict,
                    "caveats": list(c.caveats)})
    return out


def yardstick_table(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return the yardstick rows as the UI/markdown table (short, human column names)."""
    def num(v: Any, fmt: str) -> Any:
        return None if v is None else format(v, fmt)
    return [{"Cell": r["cell_id"], "GPU": r["gpu_type"] or "–", "Ours tok/s/GPU": num(r["tokens_per_s_per_gpu"], ".0f"),
             "Published tok/s/GPU": num(r["reference_tokens_per_s_per_gpu"], ".0f"),
             "Ratio": num(r["ratio"], ".1%"), "Verdict": r["verdict"],
             "Reference": r["reference_id"] or "–", "Caveats": "; ".join(r["caveats"]) or "–"} for r in rows]
