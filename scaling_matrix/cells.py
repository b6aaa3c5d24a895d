"""From a planned cell to a launch plan, and from its outputs to a classified, measured result.

Pure: no processes, no files (reading outputs lives in ``adapters/outputs.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from scaling_matrix.analysis import cell_metrics
from scaling_matrix.config.models import ProfileSpec
from scaling_matrix.matrix import PlannedCell
from scaling_matrix.outcome import Outcome, classify_local
from scaling_matrix.parsing.memory import MemoryLog, summarize
from scaling_matrix.parsing.progress import parse_text
from scaling_matrix.paths import cell_dir, model_path, scaling_home
from scaling_matrix.recipes import recipe_for
from scaling_matrix.records import CellMetrics
from scaling_matrix.render.nemo import FINETUNE_GRAMMARS, import_argv
from scaling_matrix.render.sbatch import JobRequest
from scaling_matrix.render.shell import CACHE_VARS, cache_env, shell_join
from scaling_matrix.versions import check_profile_version
from scaling_matrix.workload import workload_prefix


@dataclass(frozen=True)
class CellPlan:
    """Everything needed to launch one cell: where, what argv, with which environment."""

    run_id: str
    planned: PlannedCell
    profile: ProfileSpec
    cell_dir: Path
    restore_path: Path
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)

    @property
    def command(self) -> str:
        """Return the argv as one shell-quoted line (for display and storage)."""
        return shell_join(self.argv)


def plan_cell(run_id: str, planned: PlannedCell, profile: ProfileSpec,
              python: str | None = None) -> CellPlan:
    """Return the launch plan of ``planned`` in run ``run_id`` on ``profile``."""
    directory = cell_dir(run_id, planned.cell)
    restore = model_path(planned.model, profile)
    contract = check_profile_version(profile)  # the NeMo version's grammar; tiny speaks nemo-run-cli
    finetune_argv = FINETUNE_GRAMMARS[contract.grammar if contract else "nemo-run-cli"]
    argv = finetune_argv(planned.cell, planned.model, restore, workload_prefix(profile, python),
                         log_dir=directory / "nemo_log")
    env = {**cache_env(str(scaling_home() / "cache")), **profile.env}
    return CellPlan(run_id, planned, profile, directory, restore, argv, env)


def job_request(plan: CellPlan) -> JobRequest:
    """Return the batch-job request of a cell plan (one task per GPU, as the workshop does)."""
    cell = plan.planned.cell
    gpus = cell.devices if plan.profile.device == "gpu" or plan.profile.launcher == "slurm" else 0
    name = cell.job_name or cell.slug[:64]
    cache_dirs = [v for k, v in plan.env.items() if k in CACHE_VARS]
    return JobRequest(name, cell.nodes, cell.devices, gpus, str(plan.cell_dir), plan.argv,
                      dict(plan.env), str(plan.cell_dir / "memory"), cache_dirs)


def effective_seq_length(plan: CellPlan) -> int | None:
    """Return the cell's sequence length (explicit, else the recipe default)."""
    recipe = recipe_for(plan.planned.model.factory)
    return plan.planned.cell.seq_length or (recipe.seq_length if recipe else None)


def plan_import(planned: PlannedCell, profile: ProfileSpec, python: str | None = None) -> list[str]:
    """Return the import argv for the model of ``planned`` on ``profile``."""
    return import_argv(planned.model, model_path(planned.model, profile),
                       workload_prefix(profile, python), overwrite=True)


def evaluate(log_text: str, memory: MemoryLog, returncode: int | None, wall_clock_s: float | None,
             cancelled: bool = False, plan: CellPlan | None = None) -> tuple[Outcome, CellMetrics]:
    """Return the classified outcome and metrics of one finished local attempt."""
    cell = plan.planned.cell if plan else None
    parsed = parse_text(log_text, expected_max_steps=cell.max_steps if cell else None)
    metrics = cell_metrics(parsed, summarize(memory), wall_clock_s, gpus=cell.gpus if cell else None,
                           seq_length=effective_seq_length(plan) if plan else None,
                           global_batch_size=cell.global_batch_size if cell else None)
    outcome = classify_local(returncode, log_text, parsed.reached_last_step, cancelled, parsed=parsed)
    return outcome, metrics


def plan_document(matrix: str, profile: ProfileSpec, cells: list[PlannedCell],
                  run_id: str = "RUN-ID") -> dict[str, object]:
    """Return what ``plan --json`` prints: every import and fine-tune argv of ``cells`` on ``profile``
    (unwrapped: the container wrapper is added by the sbatch renderer), plus the NeMo contract used."""
    contract = check_profile_version(profile)
    imports = {pc.model.name: pc for pc in cells}
    return {
        "matrix": matrix, "profile": profile.name, "workload": profile.workload,
        "nemo_contract": {"version": contract.version, "library": contract.library} if contract else None,
        "imports": [{"model": name, "argv": plan_import(pc, profile)} for name, pc in imports.items()],
        "cells": [{"key": pc.cell.key, "model": pc.model.name, "job_name": pc.cell.job_name,
                   "argv": plan_cell(run_id, pc, profile).argv} for pc in cells],
    }
