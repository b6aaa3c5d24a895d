"""From a planned cell to a launch plan and each attempt's job, and from how a job ended to a
classified, measured result (the one place where an outcome is decided, for every backend).

Pure: no processes, no files (reading outputs lives in ``adapters/outputs.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from scaling_matrix.analysis import cell_metrics
from scaling_matrix.backends.base import JobSpec, RunEnd
from scaling_matrix.config.models import ProfileSpec
from scaling_matrix.layout import Layout
from scaling_matrix.matrix import PlannedCell
from scaling_matrix.outcome import FailureClass, Outcome, classify_local, classify_slurm
from scaling_matrix.parsing.memory import MemoryLog, summarize
from scaling_matrix.parsing.progress import ParsedLog, parse_text
from scaling_matrix.paths import cell_dir, model_path, scaling_home
from scaling_matrix.recipes import recipe_for
from scaling_matrix.records import CellResult, CellStatus
from scaling_matrix.render.nemo import finetune_argv, import_argv
from scaling_matrix.render.sbatch import JobRequest, render_sbatch
from scaling_matrix.render.shell import CACHE_VARS, cache_env, shell_join
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


def attempt_dir(plan: CellPlan, attempt: int) -> Path:
    """Return the folder of one attempt (the cell's folder for the first one)."""
    return plan.cell_dir if attempt == 1 else plan.cell_dir / f"attempt-{attempt}"


def comment_for(run_id: str, cell_id: str, attempt: int) -> str:
    """Return the ``--comment`` naming attempt ``attempt`` of cell ``cell_id`` of ``run_id`` in the scheduler."""
    slug = re.sub(r"[^a-z0-9]+", "-", cell_id.lower()).strip("-")  # CellSpec.slug of that key
    return f"scaling-matrix:{run_id}:{slug}:{attempt}"


def job_spec(plan: CellPlan, attempt: int = 1) -> JobSpec:
    """Return the job of one attempt of ``plan``: argv, ranks, folder and, on SLURM, the rendered script.

    Raises:
        RenderError: the profile cannot express this job (raised at plan time: see ``planning``).
    """
    directory = attempt_dir(plan, attempt)
    req = replace(job_request(plan), workdir=str(directory), memory_dir=str(directory / "memory"))
    script = render_sbatch(req, plan.profile) if plan.profile.launcher == "slurm" else None
    return JobSpec(req.job_name, plan.argv, plan.planned.cell.layout, directory, dict(plan.env), script,
                   comment_for(plan.run_id, plan.planned.cell.key, attempt), plan.profile.cell_timeout_s)


def import_spec(planned: PlannedCell, profile: ProfileSpec, argv: list[str], directory: Path) -> JobSpec:
    """Return the one-rank job that imports ``planned``'s model, logging into ``directory``."""
    env = cache_env(str(scaling_home() / "cache")) | dict(profile.env)
    req = JobRequest(f"import-{planned.model.name}"[:64], 1, 1, 1 if profile.device == "gpu" else 0,
                     str(directory), argv, env, None, [v for k, v in env.items() if k in CACHE_VARS])
    script = render_sbatch(req, profile) if profile.launcher == "slurm" else None
    return JobSpec(req.job_name, argv, Layout(1, 1), directory, env, script, timeout_s=profile.cell_timeout_s)


def initial_result(plan: CellPlan, status: CellStatus = CellStatus.PENDING) -> CellResult:
    """Return the stored row of a cell before it runs (or of one that never ran, with ``status``)."""
    p = plan.profile
    return CellResult(plan.run_id, plan.planned.cell, plan.planned.model, p.workload, p.device,
                      p.cluster, status=status, cell_dir=str(plan.cell_dir), command=plan.command)


def judge(plan: CellPlan, end: RunEnd, log_text: str) -> tuple[Outcome, ParsedLog]:
    """Return the outcome of one ended attempt and the parsed log it was judged on."""
    parsed = parse_text(log_text, expected_max_steps=plan.planned.cell.max_steps)
    if end.error is not None:
        klass = FailureClass.CANCELLED if end.cancelled else FailureClass.LAUNCH_FAILED
        return Outcome(klass, end.error[:500]), parsed
    if end.scheduler is not None or plan.profile.launcher == "slurm":
        s = end.scheduler
        return classify_slurm(s.state if s else None, s.exit_code if s else None, s.signal if s else None,
                              log_text, parsed.reached_last_step, cancelled_by_us=end.cancelled,
                              parsed=parsed), parsed
    return classify_local(end.returncode, log_text, parsed.reached_last_step, end.cancelled, parsed=parsed), parsed


def evaluate(plan: CellPlan, attempt: int, end: RunEnd, log_text: str, memory: MemoryLog) -> CellResult:
    """Return the stored result of one ended attempt: outcome, status, metrics, scheduler facts."""
    outcome, parsed = judge(plan, end, log_text)
    cell = plan.planned.cell
    metrics = cell_metrics(parsed, summarize(memory), end.wall_clock_s, gpus=cell.gpus,
                           seq_length=effective_seq_length(plan), global_batch_size=cell.global_batch_size)
    status = (CellStatus.COMPLETED if outcome.ok else
              CellStatus.CANCELLED if outcome.failure_class is FailureClass.CANCELLED else CellStatus.FAILED)
    return replace(initial_result(plan, status), failure_class=outcome.failure_class.value,
                   reason=outcome.reason, attempts=attempt, exit_code=end.returncode,
                   job_id=end.scheduler.job_id if end.scheduler else None, started_at=end.started_at,
                   finished_at=end.finished_at, cell_dir=str(attempt_dir(plan, attempt)), metrics=metrics)
