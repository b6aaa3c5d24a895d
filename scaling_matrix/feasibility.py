"""Memory feasibility of planned cells: predictions per cell and the skip decision. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from scaling_matrix.config.models import CellSpec, ProfileSpec
from scaling_matrix.matrix import PlannedCell
from scaling_matrix.memory_model import GIB, MemoryPrediction, calibration_factor, predict
from scaling_matrix.recipes import recipe_for
from scaling_matrix.records import CellStatus


@dataclass(frozen=True)
class Assessment:
    """A planned cell and its memory prediction (None when the recipe is unknown)."""

    planned: PlannedCell
    prediction: MemoryPrediction | None

    @property
    def infeasible(self) -> bool:
        """True when the cell is predicted not to fit its device."""
        return self.prediction is not None and self.prediction.verdict == "oom"

    def describe(self) -> str:
        """Return a one-line summary: predicted GiB, capacity, headroom and verdict."""
        p = self.prediction
        if p is None:
            return "memory: no recipe facts for this factory (prediction skipped)"
        cap = f"{p.capacity_gib:.0f} GiB" if p.capacity_gib else "unknown capacity"
        head = f", headroom {p.headroom_gib:+.1f} GiB" if p.headroom_gib is not None else ""
        return (f"memory: predicted {p.total_gib:.2f} GiB/device of {cap}{head} → {p.verdict} "
                f"(weights {p.weights_gib:.2f}, grads {p.grads_gib:.2f}, optim {p.optimizer_gib:.2f}, "
                f"act {p.activations_gib:.2f}, overhead {p.overhead_gib:.2f}, calib ×{p.calibration:.2f})")


def uses_distributed_optimizer(cell: CellSpec) -> bool:
    """True for NeMo's real full-FT branch (factory peft_scheme='none'); LoRA and peft=none keep it off."""
    return cell.peft == "none" and cell.peft_via == "factory"


def assess(cells: Iterable[PlannedCell], profile: ProfileSpec,
           calibrations: Mapping[str, float] | None = None,
           overhead_gib: float | None = None) -> list[Assessment]:
    """Return the memory assessment of every cell on ``profile`` (``overhead_gib``: measured runtime)."""
    out = []
    for pc in cells:
        recipe = recipe_for(pc.model.factory)
        if recipe is None:
            out.append(Assessment(pc, None))
            continue
        factor = (calibrations or {}).get(pc.model.name, 1.0)
        out.append(Assessment(pc, predict(pc.cell, recipe, profile.device, profile.gpu_memory_gib, factor,
                                          uses_distributed_optimizer(pc.cell), overhead_gib)))
    return out


def calibrations_from_rows(rows: Iterable[Mapping[str, Any]], device: str) -> dict[str, float]:
    """Return per-model factors (median measured/predicted) from stored completed cell rows."""
    pairs: dict[str, list[tuple[float, float]]] = {}
    for row in rows:
        if row.get("status") != CellStatus.COMPLETED or row.get("device") != device or not row.get("peak_mem_mib"):
            continue
        try:
            cell = CellSpec.model_validate(row["config_json"])
        except ValidationError:  # a row stored before today's stricter rules: not a calibration point
            continue
        recipe = recipe_for(row.get("factory") or cell.model)
        if recipe is None:
            continue
        predicted = predict(cell, recipe, device, None, 1.0, uses_distributed_optimizer(cell)).total_gib
        pairs.setdefault(cell.model, []).append((row["peak_mem_mib"] * 1024**2 / GIB, predicted))
    return {model: calibration_factor(p) for model, p in pairs.items()}
