"""Matrix expansion and pre-submit checks. Pure functions over validated config."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from scaling_matrix.cell_rules import cell_rules, profile_rules, release_rules
from scaling_matrix.config.messages import MAX_PROBLEMS, problems
from scaling_matrix.config.models import CellSpec, MatrixSpec, ModelSpec, ProfileSpec
from scaling_matrix.config.secrets import shown
from scaling_matrix.config.types import suggest
from scaling_matrix.errors import ConfigError, Problem
from scaling_matrix.versions import check_profile_version

#: Keys a ``corrected:`` block may override (every cell field but the repeat index).
CORRECTABLE = frozenset(CellSpec.model_fields) - {"repeat"}


@dataclass(frozen=True)
class PlannedCell:
    """A validated cell with its model spec resolved (``origin``: where in the matrix it came from)."""

    cell: CellSpec
    model: ModelSpec
    origin: str = ""


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


def _split_corrected(name: str, where: str, row: Any) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Return (the cell's own fields, its ``corrected:`` overrides or None), both checked for shape."""
    if not isinstance(row, dict):
        raise ConfigError(f"matrix {name}: {where}", "must be a mapping of cell fields",
                          "write {model: ..., track: ..., gpus: ...}")
    row = dict(row)
    corrected = row.pop("corrected", None)
    if corrected is None:
        return row, None
    if not isinstance(corrected, dict) or not corrected:
        raise ConfigError(f"matrix {name}: {where}.corrected", "must be a non-empty mapping of cell fields",
                          "write corrected: {peft: none, job_name: ...}")
    for key in corrected:
        if key not in CORRECTABLE:
            raise ConfigError(f"matrix {name}: {where}.corrected.{shown(str(key))}", "is not a cell field",
                              suggest(str(key), CORRECTABLE))
    return row, corrected


def _parse_cell(matrix: MatrixSpec, where: str, row: dict[str, Any], corrected: dict[str, Any]) -> CellSpec:
    """Return the CellSpec of ``row`` (+ ``corrected``); errors name the key where the bad value was written."""
    def scope(loc: tuple[Any, ...]) -> str:
        key = loc[0] if loc else None
        if key in corrected:
            return f"{where}.corrected"
        return "defaults" if key in matrix.defaults and key not in row else where

    try:
        return CellSpec.model_validate({**matrix.defaults, **row, **corrected})
    except ValidationError as exc:
        raise ConfigError.of(problems(exc, f"matrix {matrix.name}", CellSpec, scope)) from None


def _planned_row(matrix: MatrixSpec, where: str, raw: Any) -> PlannedCell:
    """Return the planned cell of one row (both variants of a ``corrected:`` row are validated)."""
    row, corrected = _split_corrected(matrix.name, where, raw)
    cell = _parse_cell(matrix, where, row, {})
    fixed = cell if corrected is None else _parse_cell(matrix, where, row, corrected)
    for label, candidate in ((where, cell), (f"{where}.corrected", fixed)):
        if candidate.model not in matrix.models:
            raise ConfigError(f"matrix {matrix.name}: {label}.model", f"unknown model '{candidate.model}'",
                              f"use one of {sorted(matrix.models)} or add it under 'models:'")
    chosen = fixed if matrix.variant == "corrected" else cell
    return PlannedCell(chosen, matrix.models[chosen.model], where)


def expand(matrix: MatrixSpec) -> list[PlannedCell]:
    """Return every cell of ``matrix`` (axes product, then explicit cells), over its defaults.

    Raises:
        ConfigError: one line per problem over all rows (invalid cells, unknown models, duplicates).
    """
    sources = _axis_rows(matrix.axes) + [(f"cells[{i}]", c) for i, c in enumerate(matrix.cells)]
    planned: dict[str, PlannedCell] = {}
    found: list[Problem] = []
    for where, raw in sources:
        try:
            pc = _planned_row(matrix, where, raw)
        except ConfigError as exc:
            found += exc.problems
            continue
        if pc.cell.key in planned:
            found.append(Problem(f"matrix {matrix.name}: {where}", f"duplicate cell {pc.cell.key}",
                                 "remove the duplicate or change one of gpus, nodes, tp, pp, cp, ep, etp, vp, sp, peft"))
        planned[pc.cell.key] = pc
        for rep in range(2, matrix.repeats + 1):
            copy = pc.cell.model_copy(update={"repeat": rep})
            planned[copy.key] = PlannedCell(copy, pc.model, where)
    if found:
        raise ConfigError.of(found[:MAX_PROBLEMS])
    return list(planned.values())


def check_cell(planned: PlannedCell) -> list[str]:
    """Return the violated parallelism rules of one cell (empty when valid)."""
    return [problem for _, problem, _ in cell_rules(planned.cell, planned.model)]


def check_against_profile(planned: PlannedCell, profile: ProfileSpec) -> list[str]:
    """Return the reasons ``planned`` cannot run on ``profile`` (empty when it can)."""
    return [problem for _, problem, _ in profile_rules(planned.cell, planned.model, profile)]


def unsupported_cells(cells: list[PlannedCell], profile: ProfileSpec) -> list[tuple[PlannedCell, str]]:
    """Return the cells ``profile``'s library release cannot run, each with the reason."""
    return [(pc, rules[0][1]) for pc in cells if (rules := release_rules(pc.cell, pc.model, profile))]


def plan_cells(matrix: MatrixSpec, profile: ProfileSpec | None = None,
               skip_unsupported: bool = False) -> list[PlannedCell]:
    """Return the expanded, fully validated cells of ``matrix`` (for ``profile`` if given);
    ``skip_unsupported`` drops the cells the profile's library release cannot run instead of refusing.

    Raises:
        ConfigError: one line per broken rule, naming the cell's key path and a concrete fix.
    """
    if profile is not None:
        check_profile_version(profile)  # a library version we have no contract for: refuse before anything
    cells = expand(matrix)
    if profile is not None and skip_unsupported:
        dropped = {id(pc) for pc, _ in unsupported_cells(cells, profile)}
        cells = [pc for pc in cells if id(pc) not in dropped]
    found: list[Problem] = []
    for pc in cells:
        rules = cell_rules(pc.cell, pc.model) + ((profile_rules(pc.cell, pc.model, profile)
                                                  + release_rules(pc.cell, pc.model, profile)) if profile else [])
        where = pc.origin or "cells"
        suffix = f" (cell {pc.cell.key})" if where.startswith("axes") else ""
        found += [Problem(f"matrix {matrix.name}: {where}.{field}", problem + suffix, fix)
                  for field, problem, fix in rules]
    if found:
        raise ConfigError.of(_collapse(found)[:MAX_PROBLEMS])
    return cells


def _collapse(found: list[Problem]) -> list[Problem]:
    """Return ``found`` with repeats of the same problem and fix (e.g. a profile mismatch in every cell)
    reported once, at their first key path, with how many more cells share it."""
    groups: dict[tuple[str, str], list[Problem]] = {}
    for p in found:
        groups.setdefault((p.problem, p.fix), []).append(p)
    return [Problem(ps[0].field, ps[0].problem + (f" (and {len(ps) - 1} more cells)" if len(ps) > 1 else ""),
                    ps[0].fix) for ps in groups.values()]
