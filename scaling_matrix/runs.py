"""Start a run on disk and in the store, and write what a run would submit (dry run, ``plan --out``).

The run folder holds, per cell, exactly what is (or would be) run: ``job.sbatch`` (SLURM
profiles), ``command.sh`` and ``argv.json`` (the workload's argv, once per rank), and for NeMo
models ``automodel.yaml`` (the same cell as a NeMo AutoModel recipe); ``imports/<model>/`` the
same for each model import, and ``rendered.json`` the index of it all.
"""

from __future__ import annotations

import getpass
import json
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scaling_matrix.adapters.provenance import driver_provenance, image_provenance
from scaling_matrix.adapters.runner import SubprocessRunner
from scaling_matrix.adapters.store import ResultsStore
from scaling_matrix.backends.base import JobSpec
from scaling_matrix.backends.slurm import SCRIPT_NAME
from scaling_matrix.cells import initial_result
from scaling_matrix.errors import ConfigError
from scaling_matrix.paths import inside, run_dir
from scaling_matrix.planning import RunPlan
from scaling_matrix.records import CellStatus, RunInfo
from scaling_matrix.render.automodel import render_automodel_config, render_automodel_yaml
from scaling_matrix.render.shell import shell_join

#: Index of a rendered run folder (what a dry run or ``plan --out`` wrote).
INDEX = "rendered.json"


def new_run_id() -> str:
    """Return a fresh run id: UTC timestamp plus 6 random hex digits."""
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)


def current_user() -> str:
    """Return the OS user name (``unknown`` when it cannot be determined)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def git_revision(cwd: Path | None = None) -> str | None:
    """Return the project's git revision (with ``-dirty`` when modified), or None."""
    runner = SubprocessRunner()
    res = runner.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=cwd, timeout_s=10)
    if not res.ok:
        return None
    dirty = runner.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd, timeout_s=10)
    return res.stdout.strip() + ("-dirty" if dirty.ok and dirty.stdout.strip() else "")


def start_run(run: RunPlan, store: ResultsStore, flow_run_id: str) -> None:
    """Create the run folder (with the flow run id), the run row, a pending row per cell not yet
    completed (so no cell can silently vanish) and the run's provenance."""
    folder = run_dir(run.run_id)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "flow_run_id").write_text(flow_run_id)
    info = RunInfo(run.run_id, run.matrix.name, run.profile, current_user(), git_revision(), datetime.now(UTC))
    store.create_run(info)
    done = {c.cell_id for c in store.cell_states(run.run_id) if c.status is CellStatus.COMPLETED}
    for plan in run.plans:
        if plan.planned.cell.key not in done:
            store.save_cell(initial_result(plan))
    store.set_provenance(run.run_id, {**image_provenance(run.profile.container), **driver_provenance()})


def _write_job(folder: Path, spec: JobSpec) -> dict[str, Any]:
    """Write one job's script, command and argv into ``folder``; return its index entry."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "command.sh").write_text("#!/usr/bin/env bash\n" + shell_join(spec.argv) + "\n")
    (folder / "argv.json").write_text(json.dumps(spec.argv, indent=1) + "\n")
    entry: dict[str, Any] = {"name": spec.name, "folder": str(folder), "nodes": spec.layout.nodes,
                             "ranks_per_node": spec.layout.devices, "command": shell_join(spec.argv)}
    if spec.script is not None:
        (folder / SCRIPT_NAME).write_text(spec.script)
        entry["script"] = str(folder / SCRIPT_NAME)
    return entry


def write_rendered(run: RunPlan, folder: Path) -> dict[str, Any]:
    """Write every job of ``run`` (cells and imports) under ``folder``; return the index (also written)."""
    cells = {}
    for plan in run.plans:
        key = plan.planned.cell.key
        target = inside(folder, plan.planned.cell.slug)
        cells[key] = _write_job(target, run.jobs[key])
        if plan.planned.model.workload == "nemo":
            try:
                cfg = render_automodel_config(plan.planned.cell, plan.planned.model,
                                              str(target / "automodel-checkpoints"))
            except ConfigError as exc:  # a feature the contracted AutoModel release lacks (e.g. Mixtral EP)
                cells[key]["recipe_refused"] = str(exc)
                continue
            (target / "automodel.yaml").write_text(render_automodel_yaml(cfg))
            cells[key]["recipe"] = str(target / "automodel.yaml")
    imports = {name: _write_job(inside(folder, "imports", name), spec) for name, spec in run.imports.items()}
    index = {"run_id": run.run_id, "matrix": run.matrix.name, "profile": run.profile.name,
             "launcher": run.profile.launcher, "cells": cells, "imports": imports}
    (folder / INDEX).write_text(json.dumps(index, indent=1) + "\n")
    return index


__all__ = ["INDEX", "current_user", "git_revision", "new_run_id", "start_run", "write_rendered"]
