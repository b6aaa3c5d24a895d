"""``scaling-matrix automodel``: NeMo AutoModel recipes for a matrix, in the grammar of a contracted release."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from scaling_matrix.config.loading import load_matrix, load_profile
from scaling_matrix.errors import ConfigError, ScalingError
from scaling_matrix.matrix import PlannedCell, plan_cells
from scaling_matrix.recipes import recipe_for
from scaling_matrix.render.automodel import (automodel_cell_error, automodel_contract, automodel_launch_argv,
                                             render_automodel_config, render_automodel_yaml)
from scaling_matrix.render.shell import shell_join
from scaling_matrix.versions import Contract


def _contract(profile: str | None, version: str | None) -> Contract:
    if version is not None:
        return automodel_contract(version, "--version")
    if profile is None:
        return automodel_contract(None)
    prof = load_profile(profile)
    return automodel_contract(prof.automodel_version, f"profile {prof.name}.automodel_version")


def _split(cells: list[PlannedCell], contract: Contract, matrix: str) -> tuple[list[PlannedCell], list[ConfigError]]:
    """Return (renderable cells, one error per cell the contracted release cannot run)."""
    ok, rejected = [], []
    for pc in cells:
        error = automodel_cell_error(pc.cell, pc.model, contract, f"matrix {matrix}: ")
        if error:
            rejected.append(error)
        else:
            ok.append(pc)
    return ok, rejected


def automodel(matrix: Annotated[str, typer.Option(help="matrix preset or YAML path")] = "workshop",
              out: Annotated[str, typer.Option(help="directory for the recipe YAMLs")] = "automodel-configs",
              profile: Annotated[str | None, typer.Option(help="profile whose automodel_version to use")] = None,
              version: Annotated[str | None, typer.Option(help="nemo-automodel version (default: the "
                                                          "profile's, else the newest contracted)")] = None,
              skip_unsupported: Annotated[bool, typer.Option("--skip-unsupported", help="render the other "
                                          "cells when some need features this AutoModel lacks")] = False,
              json_out: Annotated[bool, typer.Option("--json", help="print one JSON document")] = False) -> None:
    """Write a NeMo AutoModel recipe YAML per cell and print each launch command."""
    from scaling_matrix.cli import console, err_console, _fail

    try:
        contract = _contract(profile, version)
        mat = load_matrix(matrix)
        cells, rejected = _split(plan_cells(mat), contract, mat.name)
    except ScalingError as exc:
        raise _fail(exc) from exc
    for exc in rejected:
        err_console.print(f"[bold {'yellow' if skip_unsupported else 'red'}]"
                          f"{'skipped' if skip_unsupported else 'error'}:[/] {exc}", soft_wrap=True)
    if rejected and not skip_unsupported:
        raise typer.Exit(2)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    doc: dict[str, Any] = {"automodel": contract.release, "matrix": mat.name, "cells": [],
                           "skipped": [{"error": str(e)} for e in rejected]}
    for pc in cells:
        path = folder / f"{pc.cell.slug}.yaml"
        cfg = render_automodel_config(pc.cell, pc.model, str(folder / "checkpoints" / pc.cell.slug),
                                      contract=contract)
        path.write_text(render_automodel_yaml(cfg))
        argv = automodel_launch_argv(str(path), pc.cell.devices, contract.release)
        recipe = recipe_for(pc.model.factory)
        doc["cells"].append({"key": pc.cell.key, "model": pc.model.name, "config": str(path), "argv": argv,
                             "nproc_per_node": pc.cell.devices,
                             "architecture": recipe.hf_architecture if recipe else None})
        if not json_out:
            console.print(f"[cyan]{pc.cell.key}[/]\n  " + shell_join(argv), soft_wrap=True)
    if json_out:
        typer.echo(json.dumps(doc, indent=1))
