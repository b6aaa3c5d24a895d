"""Matrix expansion and pre-submit checks. Pure functions over validated config."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from scaling_matrix.config.loading import parse_model
from scaling_matrix.config.models import CellSpec, MatrixSpec, ModelSpec, ProfileSpec
from scaling_matrix.errors import ConfigError
from scaling_matrix.versions import check_profile_version


@dataclass(frozen=True)
class PlannedCell:
    """A validated cell with its model spec resolved."""

    cell: CellSpec
    model: ModelSpec


def _axis_rows(axes: list[dict[str, list[Any]]]) -> list[tuple[str, dict[str, Any]]]:
    rows: list[tuple[str, dict[str, Any]]] = []
    for i, axis in enumerate(axes):
        for k, values in axis.items():
            if not isinstance(values, list) or not values:
                raise ConfigError(f"axes[{i}].{k}", "must be a non-empty list", f"write {k}: [value, ...]")
        keys = list(axis)
        for combo in itertools.product(*(axis[k] for k in keys)):
            rows.append((f"axes[{i}]", dict(zip(keys, combo, strict=True))))
    return rows


def expand(matrix: MatrixSpec) -> list[PlannedCell]:
    """Return every cell of ``matrix`` (axes product, then explicit cells), over its defaults.

    Raises:
        ConfigError: a cell is invalid, names an unknown model, or two cells share a key.
    """
    sources = _axis_rows(matrix.axes) + [(f"cells[{i}]", c) for i, c in enumerate(matrix.cells)]
    planned: dict[str, PlannedCell] = {}
    for where, row in sources:
        if not isinstance(row, dict):
            raise ConfigError(where, "must be a mapping of cell fields", "write {model: ..., gpus: ...}")
        row = dict(row)
        corrected = row.pop("corrected", None) or {}
        if matrix.variant == "corrected":
            row.update(corrected)
        cell = parse_model(CellSpec, {**matrix.defaults, **row}, f"matrix {matrix.name}: {where}")
        if cell.model not in matrix.models:
            raise ConfigError(f"matrix {matrix.name}: {where}.model", f"unknown model {cell.model!r}",
                              f"use one of {sorted(matrix.models)} or add it under 'models:'")
        if cell.key in planned:
            raise ConfigError(f"matrix {matrix.name}: {where}", f"duplicate cell {cell.key}",
                              "remove the duplicate or change gpus/tp/ep/peft")
        planned[cell.key] = PlannedCell(cell, matrix.models[cell.model])
        for rep in range(2, matrix.repeats + 1):
            copy = cell.model_copy(update={"repeat": rep})
            planned[copy.key] = PlannedCell(copy, matrix.models[cell.model])
    return list(planned.values())


def check_cell(planned: PlannedCell) -> list[str]:
    """Return the violated parallelism rules of one cell (empty when valid).

    Rules from Megatron-Core / Lightning (reference/nemo.md §5).
    """
    c, m = planned.cell, planned.model
    problems: list[str] = []
    world = c.gpus
    if world % (c.tp * c.pp * c.cp):
        problems.append(f"TP·PP·CP ({c.tp}·{c.pp}·{c.cp}) must divide world size {world}")
    etp = c.etp or c.tp
    if world % (etp * c.ep * c.pp):
        problems.append(f"ETP·EP·PP ({etp}·{c.ep}·{c.pp}) must divide world size {world}")
    if c.ep > 1 and m.family != "moe":
        problems.append(f"EP={c.ep} needs a MoE model; {m.name} is dense (set ep: 1)")
    if m.family == "moe" and m.experts % c.ep:
        problems.append(f"EP={c.ep} must divide the expert count {m.experts}")
    if c.sp and c.tp == 1:
        problems.append("sequence parallel (sp: true) requires TP > 1")
    if c.ep > 1 and c.tp > 1 and not c.sp:
        problems.append("EP > 1 with TP > 1 requires sequence parallel (set sp: true)")
    if c.vp is not None and c.pp == 1:
        problems.append("virtual pipeline (vp) requires PP > 1")
    if c.nodes * c.devices != world:
        problems.append(f"world size {world} must equal nodes {c.nodes} × devices {c.devices}")
    if c.global_batch_size % (c.micro_batch_size * c.dp):
        problems.append(f"global batch {c.global_batch_size} must be divisible by micro batch "
                        f"{c.micro_batch_size} × DP {c.dp}")
    return problems


def check_against_profile(planned: PlannedCell, profile: ProfileSpec) -> list[str]:
    """Return the reasons ``planned`` cannot run on ``profile`` (empty when it can)."""
    c, m = planned.cell, planned.model
    problems: list[str] = []
    if m.workload != profile.workload:
        problems.append(f"model {m.name} needs workload '{m.workload}' but profile "
                        f"'{profile.name}' runs '{profile.workload}'")
    if c.devices > profile.gpus_per_node:
        problems.append(f"{c.devices} GPUs per node exceeds the profile's gpus_per_node "
                        f"{profile.gpus_per_node}")
    if c.gpus > profile.capacity_gpus and profile.launcher == "slurm":
        problems.append(f"{c.gpus} GPUs exceeds the profile's capacity_gpus {profile.capacity_gpus}")
    return problems


def plan_cells(matrix: MatrixSpec, profile: ProfileSpec | None = None) -> list[PlannedCell]:
    """Return the expanded, fully validated cells of ``matrix`` (for ``profile`` if given).

    Raises:
        ConfigError: naming the first offending cell and every rule it breaks.
    """
    if profile is not None:
        check_profile_version(profile)  # a NeMo version we have no contract for: refuse before anything
    cells = expand(matrix)
    for pc in cells:
        problems = check_cell(pc) + (check_against_profile(pc, profile) if profile else [])
        if problems:
            fix = "fix the cell in the matrix file"
            if profile and any("workload" in p for p in problems):
                fix = "pick a profile for this workload (list them with `scaling-matrix presets`)"
            raise ConfigError(f"matrix {matrix.name}: cell {pc.cell.key}", "; ".join(problems), fix)
    return cells
