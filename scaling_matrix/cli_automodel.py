"""``scaling-matrix automodel``: NeMo AutoModel recipes for a matrix, in the grammar of a contracted release."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from scaling_matrix.cli_checks import check_automodel_version, say
from scaling_matrix.config.loading import load_matrix, load_profile
from scaling_matrix.errors import ConfigError, ScalingError
from scaling_matrix.matrix import PlannedCell, plan_cells
from scaling_matrix.ownership import claim_output_dir
from scaling_matrix.paths import inside
from scaling_matrix.recipes import recipe_for
from scaling_matrix.render.automodel import (automodel_cell_error, automodel_contract, automodel_launch_argv,
                                             render_automodel_config, render_automodel_yaml)
from scaling_matrix.render.shell import shell_join
from scaling_matrix.versions import Contract


def _contract(profile: str | None, version: str | None) -> Contract:
    if version is not None:
        return automodel_contract(check_automodel_version(version), "--version")
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
    from scaling_matrix.cli import _fail, console, err_console

    try:
        contract = _contract(profile, version)
        mat = load_matrix(matrix)
        cells, rejected = _split(plan_cells(mat), contract, mat.name)
        for exc in rejected:
            for line in str(exc).splitlines():
                say(err_console, ("skipped: " if skip_unsupported else "error: ") + line,
                    "bold yellow" if skip_unsupported else "bold red")
        if rejected and not skip_unsupported:
            raise typer.Exit(2)
        folder = claim_output_dir(Path(out), "--out")  # a file or somebody else's folder: an error
        doc = _render(cells, contract, folder, console if not json_out else None)
    except ScalingError as exc:
        raise _fail(exc) from exc
    if json_out:
        typer.echo(json.dumps({"automodel": contract.release, "matrix": mat.name, **doc,
                               "skipped": [{"error": str(e)} for e in rejected]}, indent=1))


def _render(cells: list[PlannedCell], contract: Contract, folder: Path, console: Any) -> dict[str, Any]:
    """Write one recipe per cell under ``folder``; print each launch command to ``console`` if given."""
    rendered = []
    for pc in cells:
        path = inside(folder, f"{pc.cell.slug}.yaml")
        cfg = render_automodel_config(pc.cell, pc.model, str(inside(folder, "checkpoints", pc.cell.slug)),
                                      contract=contract)
        path.write_text(render_automodel_yaml(cfg))
        argv = automodel_launch_argv(str(path), pc.cell.devices, contract.release)
        recipe = recipe_for(pc.model.factory)
        rendered.append({"key": pc.cell.key, "model": pc.model.name, "config": str(path), "argv": argv,
                         "nproc_per_node": pc.cell.devices,
                         "architecture": recipe.hf_architecture if recipe else None})
        if console is not None:
            say(console, pc.cell.key, "cyan")
            say(console, "  " + shell_join(argv))
    return {"cells": rendered}
