"""The published yardstick: each measured cell next to NVIDIA's published number for the same work. Pure.

References come from a small versioned data file (``scaling_matrix/data/published_references.json``,
documented in ``docs/yardstick.md``). A reference is **comparable** with a cell only when the workload
(library), GPU type, precision, model architecture, method (LoRA / full SFT / pretraining) and sequence
length are the same; otherwise the cell says "no comparable reference" and why. The tiny CPU engine never
gets a reference. Among comparable references the closest setup wins (same GPU count, then batch and
parallel layout); the differences that remain are listed as caveats. The compared metric is tokens/s
per GPU, which needs no FLOP convention; ratio = ours / published, flagged below the threshold (default
0.95, DGX Cloud Benchmarking's "exemplar" bar).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from scaling_matrix.gpus import gpu_key

DATA = Path(__file__).parent / "data" / "published_references.json"
DEFAULT_THRESHOLD = 0.95
NO_REFERENCE = "no comparable reference"
METRIC = "tokens_per_s_per_gpu"
#: matrix model / recipe key -> architecture key of the references (Llama 3 and 3.1 8B share one)
ARCH = {"llama31_8b": "llama3-8b", "llama3_8b": "llama3-8b", "llama31_70b": "llama3-70b",
        "llama3_70b": "llama3-70b", "mixtral_8x7b": "mixtral-8x7b", "llama2_7b": "llama2-7b"}
#: architecture key -> recipes.RECIPES entry holding its shapes (for FLOPs)
ARCH_RECIPE = {"llama3-8b": "llama31_8b", "llama3-70b": "llama31_70b", "mixtral-8x7b": "mixtral_8x7b",
               "llama2-7b": "llama2_7b"}


@dataclass(frozen=True)
class Reference:
    """One published reference point (one entry of the data file)."""

    id: str
    source: str
    url: str
    container: str
    workload: str
    gpu_type: str
    gpus: int
    model: str
    method: str
    precision: str
    tokens_per_s_per_gpu: float
    seq_length: int | None = None
    global_batch_size: int | None = None
    micro_batch_size: int | None = None
    parallel: dict[str, Any] = field(default_factory=dict)
    data: str = ""
    model_name: str = ""
    step_time_s: float | None = None
    tflops_per_gpu: float | None = None
    mfu: float | None = None
    derived: bool = False
    convention: dict[str, Any] = field(default_factory=dict)


@lru_cache(maxsize=4)
def load_references(path: Path = DATA) -> tuple[str, tuple[Reference, ...]]:
    """Return (data version, references) of the published-references file."""
    doc = json.loads(path.read_text(encoding="utf-8"))
    return doc["version"], tuple(Reference(**ref) for ref in doc["references"])


def cell_method(row: dict[str, Any]) -> str:
    """Return the method of a cell row: 'lora' or 'sft' (full fine-tuning)."""
    return "lora" if row.get("peft") == "lora" else "sft"


def mismatch(row: dict[str, Any], ref: Reference) -> str | None:
    """Return why ``ref`` is not comparable with cell ``row`` (None: comparable)."""
    checks = [("workload", row.get("workload"), ref.workload),
              ("GPU", gpu_key(row.get("gpu_type")) or row.get("gpu_type"), ref.gpu_type),
              ("precision", row.get("precision"), ref.precision),
              ("model", ARCH.get(str(row.get("recipe") or row.get("model"))), ref.model),
              ("method", cell_method(row), ref.method),
              ("sequence length", row.get("seq_length"), ref.seq_length)]
    for name, ours, theirs in checks:
        if ours is None or theirs is None or ours != theirs:
            return f"{name} {ours if ours is not None else 'unknown'} vs {theirs if theirs is not None else 'not stated'}"
    return None


def caveats(row: dict[str, Any], ref: Reference) -> list[str]:
    """Return the setup differences left between a cell and a comparable reference."""
    out = []
    ours = {"GPUs": row.get("gpus"), "global batch": row.get("global_batch_size"),
            "micro batch": row.get("micro_batch_size"), "TP": row.get("tp"), "PP": row.get("pp"),
            "CP": row.get("cp"), "EP": row.get("ep")}
    theirs = {"GPUs": ref.gpus, "global batch": ref.global_batch_size, "micro batch": ref.micro_batch_size,
              "TP": ref.parallel.get("tp"), "PP": ref.parallel.get("pp"), "CP": ref.parallel.get("cp"),
              "EP": ref.parallel.get("ep")}
    for key, value in ours.items():
        if theirs[key] is not None and value is not None and value != theirs[key]:
            out.append(f"{key} {value} vs {theirs[key]}")
    if ref.data:
        out.append(f"reference data: {ref.data}")
    return out


def _closeness(row: dict[str, Any], ref: Reference) -> tuple[int, int]:
    return (0 if row.get("gpus") == ref.gpus else 1, len(caveats(row, ref)))


@dataclass(frozen=True)
class Comparison:
    """A cell next to its reference: value, reference value, ratio and flag (or why there is none)."""

    cell_id: str
    value: float | None
    reference: Reference | None = None
    ratio: float | None = None
    below: bool = False
    reason: str = ""
    caveats: tuple[str, ...] = ()
    threshold: float = DEFAULT_THRESHOLD

    @property
    def verdict(self) -> str:
        """Return 'below 95%' / 'ok' for a compared cell, else 'no comparable reference (…)'."""
        if self.reference is None or self.ratio is None:
            return f"{NO_REFERENCE} ({self.reason})" if self.reason else NO_REFERENCE
        return f"below {self.threshold:.0%}" if self.below else "ok"


def compare_cell(row: dict[str, Any], refs: tuple[Reference, ...] | None = None,
                 threshold: float = DEFAULT_THRESHOLD) -> Comparison:
    """Return the comparison of one cell row with its closest comparable reference."""
    refs = load_references()[1] if refs is None else refs
    cid, value = str(row.get("cell_id")), row.get(METRIC)
    if row.get("workload") == "tiny" or row.get("device") == "cpu":
        return Comparison(cid, value, reason="tiny CPU engine: never compared with GPU numbers", threshold=threshold)
    if row.get("status") != "completed":
        return Comparison(cid, value, reason=f"cell {row.get('status')}", threshold=threshold)
    found = sorted((r for r in refs if mismatch(row, r) is None), key=lambda r: _closeness(row, r))
    if not found:
        near = sorted(refs, key=lambda r: _score_mismatch(row, r))[:1]
        why = f"nearest {near[0].id}: {mismatch(row, near[0])}" if near else "no references loaded"
        return Comparison(cid, value, reason=why, threshold=threshold)
    ref = found[0]
    if value is None:
        return Comparison(cid, None, ref, reason="no measured tokens/s (sequence length or step time unknown)",
                          threshold=threshold)
    ratio = float(value) / ref.tokens_per_s_per_gpu
    return Comparison(cid, float(value), ref, ratio, ratio < threshold, "", tuple(caveats(row, ref)), threshold)


def _score_mismatch(row: dict[str, Any], ref: Reference) -> int:
    """Return how many of the comparability keys differ (for naming the nearest reference)."""
    probe = dict(row)
    count = 0
    while (why := mismatch(probe, ref)) is not None and count < 6:
        count += 1
        key = why.split(" ", 1)[0]
        probe = {**probe, **_pretend(key, ref)}
    return count


def _pretend(key: str, ref: Reference) -> dict[str, Any]:
    """Return row fields that make ``key`` match ``ref`` (used only to rank near misses)."""
    return {"workload": {"workload": ref.workload}, "GPU": {"gpu_type": ref.gpu_type},
            "precision": {"precision": ref.precision}, "model": {"recipe": ARCH_RECIPE.get(ref.model)},
            "method": {"peft": "lora" if ref.method == "lora" else "none"},
            "sequence": {"seq_length": ref.seq_length}}.get(key, {})
