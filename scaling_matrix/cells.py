"""From a planned cell to a launch plan and each attempt's job, and from how a job ended to a
classified, measured result (the one place where an outcome is decided, for every backend).

Pure: no processes, no files (reading outputs lives in ``adapters/outputs.py``).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from scaling_matrix.analysis import cell_metrics
from scaling_matrix.backends.base import JobSpec, RunEnd
from scaling_matrix.bridge_surface import argv_problems, import_problems, load_surface
from scaling_matrix.config.models import ProfileSpec
from scaling_matrix.errors import RenderError
from scaling_matrix.gpus import PRECISION, peak_tflops
from scaling_matrix.layout import Layout
from scaling_matrix.matrix import PlannedCell
from scaling_matrix.outcome import FailureClass, Outcome, classify_local, classify_slurm
from scaling_matrix.parsing.memory import MemoryLog, summarize
from scaling_matrix.parsing.progress import ParsedLog, parse_text
from scaling_matrix.paths import cell_dir, model_path, scaling_home
from scaling_matrix.recipes import recipe_for
from scaling_matrix.records import CellMetrics, CellResult, CellStatus
from scaling_matrix.render import megatron_bridge as bridge
from scaling_matrix.render.nemo import FINETUNE_GRAMMARS, import_argv
from scaling_matrix.render.sbatch import JobRequest, render_sbatch
from scaling_matrix.render.shell import CACHE_VARS, cache_env, shell_join
from scaling_matrix.versions import Contract, check_profile_version
from scaling_matrix.workload import SLEEP, SLEEP_LABEL, bridge_root, interpreter, needs_import, sleep_argv, workload_prefix

#: contract grammar -> finetune renderer (the tiny engine speaks nemo-run-cli)
GRAMMARS = {**FINETUNE_GRAMMARS, **bridge.FINETUNE_GRAMMARS}


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
    env = {**cache_env(str(scaling_home() / "cache")), **profile.env}
    if profile.workload == SLEEP:  # orchestration benchmark: a fixed sleep, nothing to train
        return CellPlan(run_id, planned, profile, directory, restore, sleep_argv(profile), env)
    contract = check_profile_version(profile)  # the library version's grammar; tiny speaks nemo-run-cli
    finetune_argv = GRAMMARS[contract.grammar if contract else "nemo-run-cli"]
    argv = finetune_argv(planned.cell, planned.model, restore, workload_prefix(profile, python),
                         log_dir=directory / "nemo_log")
    check_pinned_surface(argv, contract, argv_problems)
    return CellPlan(run_id, planned, profile, directory, restore, argv, env)


def check_pinned_surface(argv: list[str], contract: Contract | None, check: object) -> None:
    """Raise RenderError when a command for a source-pinned contract (Megatron-Bridge) breaks its
    pinned launch surface (``check``: bridge_surface.argv_problems or .import_problems)."""
    if contract is None or contract.workload != "megatron_bridge":
        return
    problems = check(argv, load_surface(contract.lock))  # type: ignore[operator]
    if problems:
        raise RenderError(f"rendered command breaks Megatron-Bridge {contract.release}'s launch surface: "
                          + "; ".join(problems))


def job_request(plan: CellPlan) -> JobRequest:
    """Return the batch-job request of a cell plan (one task per GPU, as the workshop does)."""
    cell, profile = plan.planned.cell, plan.profile
    gpus = cell.devices if profile.device == "gpu" or (profile.launcher == "slurm" and profile.workload != SLEEP) else 0
    name = cell.job_name or cell.slug[:64]
    cache_dirs = [v for k, v in plan.env.items() if k in CACHE_VARS]
    return JobRequest(name, cell.nodes, cell.devices, gpus, str(plan.cell_dir), plan.argv,
                      dict(plan.env), str(plan.cell_dir / "memory"), cache_dirs)


def effective_seq_length(plan: CellPlan) -> int | None:
    """Return the cell's sequence length (explicit, else the recipe default)."""
    recipe = recipe_for(plan.planned.model.factory)
    return plan.planned.cell.seq_length or (recipe.seq_length if recipe else None)


def plan_import(planned: PlannedCell, profile: ProfileSpec, python: str | None = None) -> list[str]:
    """Return the import argv for the model of ``planned`` on ``profile`` (Megatron-Bridge: HF → Megatron
    checkpoint conversion)."""
    target = model_path(planned.model, profile)
    if profile.workload == "megatron_bridge":
        argv = bridge.import_argv(planned.model, target, interpreter(profile), bridge_root(profile))
        check_pinned_surface(argv, check_profile_version(profile), import_problems)
        return argv
    return import_argv(planned.model, target, workload_prefix(profile, python), overwrite=True)


def label_metrics(metrics: CellMetrics, plan: CellPlan) -> CellMetrics:
    """Return ``metrics`` labelled with what the cell ran (sequence length, recipe, library, GPU type,
    precision, peak, LoRA rank and targets) for efficiency and the published yardstick."""
    profile, cell, model = plan.profile, plan.planned.cell, plan.planned.model
    recipe = recipe_for(model.factory)
    contract = check_profile_version(profile)
    bridge_lora = profile.workload == "megatron_bridge" and cell.peft == "lora"  # Bridge recipe: dim 32, 4 linears
    dim = cell.lora_dim or (32 if bridge_lora else recipe.lora_dim if recipe else None)
    targets = cell.lora_targets or (list(recipe.linear_shapes()) if bridge_lora and recipe else
                                    list(recipe.lora_targets) if recipe else None)
    gpu = profile.device == "gpu"
    engine = SLEEP_LABEL if profile.workload == SLEEP else "tiny engine (CPU)"
    return replace(metrics, seq_length=effective_seq_length(plan), recipe=recipe.name if recipe else None,
                   library=f"{contract.library.split(' (')[0]}" if contract else engine,
                   gpu_type=profile.gpu_type if gpu else None, precision=PRECISION if gpu else None,
                   peak_tflops=peak_tflops(profile.gpu_type, PRECISION, profile.peak_tflops) if gpu else None,
                   lora_dim=dim if cell.peft == "lora" else None,
                   lora_targets=targets if cell.peft == "lora" else None)


def plan_document(matrix: str, profile: ProfileSpec, cells: list[PlannedCell],
                  run_id: str = "RUN-ID") -> dict[str, object]:
    """Return what ``plan --json`` prints: every import and fine-tune argv of ``cells`` on ``profile``
    (unwrapped: the container wrapper is added by the sbatch renderer), plus the NeMo contract used."""
    contract = check_profile_version(profile)
    imports = {pc.model.name: pc for pc in cells if needs_import(pc.model)}
    described = {"workload": contract.workload, "version": contract.version, "release": contract.release,
                 "library": contract.library} if contract else None
    return {
        "matrix": matrix, "profile": profile.name, "workload": profile.workload,
        "nemo_contract": described if contract and contract.workload == "nemo2" else None,
        "contract": described,
        "imports": [{"model": name, "argv": plan_import(pc, profile)} for name, pc in imports.items()],
        "cells": [{"key": pc.cell.key, "model": pc.model.name, "job_name": pc.cell.job_name,
                   "argv": plan_cell(run_id, pc, profile).argv} for pc in cells],
    }


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


def import_comment(target: Path) -> str:
    """Return the ``--comment`` naming the import into ``target`` in the scheduler, whichever run submitted it
    (a resumed or a second orchestrator finds a running import by it instead of starting another)."""
    return f"scaling-matrix:import:{hashlib.sha256(str(target).encode()).hexdigest()[:16]}"


def import_spec(planned: PlannedCell, profile: ProfileSpec, argv: list[str], directory: Path) -> JobSpec:
    """Return the one-rank job that imports ``planned``'s model, logging into ``directory``."""
    env = cache_env(str(scaling_home() / "cache")) | dict(profile.env)
    req = JobRequest(f"import-{planned.model.name}"[:64], 1, 1, 1 if profile.device == "gpu" else 0,
                     str(directory), argv, env, None, [v for k, v in env.items() if k in CACHE_VARS])
    script = render_sbatch(req, profile) if profile.launcher == "slurm" else None
    return JobSpec(req.job_name, argv, Layout(1, 1), directory, env, script,
                   import_comment(model_path(planned.model, profile)), profile.cell_timeout_s)


def initial_result(plan: CellPlan, status: CellStatus = CellStatus.PENDING) -> CellResult:
    """Return the stored row of a cell before it runs (or of one that never ran, with ``status``)."""
    p = plan.profile
    return CellResult(plan.run_id, plan.planned.cell, plan.planned.model, p.workload, p.device,
                      p.cluster, status=status, cell_dir=str(plan.cell_dir), command=plan.command)


def judge(plan: CellPlan, end: RunEnd, log_text: str) -> tuple[Outcome, ParsedLog]:
    """Return the outcome of one ended attempt and the parsed log it was judged on."""
    parsed = parse_text(log_text, expected_max_steps=plan.planned.cell.max_steps)
    finished = parsed.reached_last_step or plan.profile.workload == SLEEP  # a sleep job logs no steps
    if end.error is not None:
        klass = FailureClass.CANCELLED if end.cancelled else FailureClass.LAUNCH_FAILED
        return Outcome(klass, end.error[:500]), parsed
    if end.scheduler is not None or plan.profile.launcher == "slurm":
        s = end.scheduler
        return classify_slurm(s.state if s else None, s.exit_code if s else None, s.signal if s else None,
                              log_text, finished, cancelled_by_us=end.cancelled,
                              parsed=parsed), parsed
    return classify_local(end.returncode, log_text, finished, end.cancelled, parsed=parsed), parsed


def evaluate(plan: CellPlan, attempt: int, end: RunEnd, log_text: str, memory: MemoryLog) -> CellResult:
    """Return the stored result of one ended attempt: outcome, status, metrics, scheduler facts."""
    outcome, parsed = judge(plan, end, log_text)
    cell = plan.planned.cell
    metrics = cell_metrics(parsed, summarize(memory), end.wall_clock_s, gpus=cell.gpus,
                           seq_length=effective_seq_length(plan), global_batch_size=cell.global_batch_size)
    metrics = label_metrics(metrics, plan)  # sequence length, GPU type, precision: for efficiency/yardstick
    status = (CellStatus.COMPLETED if outcome.ok else
              CellStatus.CANCELLED if outcome.failure_class is FailureClass.CANCELLED else CellStatus.FAILED)
    return replace(initial_result(plan, status), failure_class=outcome.failure_class.value,
                   reason=outcome.reason, attempts=attempt, exit_code=end.returncode,
                   job_id=end.scheduler.job_id if end.scheduler else None, started_at=end.started_at,
                   finished_at=end.finished_at, cell_dir=str(attempt_dir(plan, attempt)), metrics=metrics)
