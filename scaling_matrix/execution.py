"""Run one attempt of a cell or one model import on the local launcher, and record it.

I/O orchestration without Prefect: Prefect tasks in ``tasks/`` are thin wrappers over these.
"""

from __future__ import annotations

import getpass
import secrets
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from scaling_matrix.adapters.local import LocalLauncher, SlotPool
from scaling_matrix.adapters.outputs import read_log_text, read_memory_dir
from scaling_matrix.adapters.runner import SubprocessRunner
from scaling_matrix.adapters.store import ResultsStore
from scaling_matrix.cells import CellPlan, evaluate
from scaling_matrix.config.models import ProfileSpec
from scaling_matrix.errors import LaunchError
from scaling_matrix.matrix import PlannedCell
from scaling_matrix.ownership import check_import_target, claim_import_target
from scaling_matrix.paths import model_path, model_path_field
from scaling_matrix.records import CellResult
from scaling_matrix.stop import CANCEL_ALL



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


def checkpoint_complete(path: Path) -> bool:
    """Return True when ``path`` holds a complete imported checkpoint: NeMo 2 (context + weights) or
    Megatron-Bridge (a tracker file, ``latest_train_state.pt`` or ``latest_checkpointed_iteration.txt``,
    beside a non-empty ``iter_*`` folder: ``AutoBridge.import_ckpt``)."""
    weights = path / "weights"
    if (path / "context" / "io.json").is_file() and weights.is_dir() and any(weights.iterdir()):
        return True
    tracker = (path / "latest_train_state.pt").is_file() or (path / "latest_checkpointed_iteration.txt").is_file()
    return tracker and any(d.is_dir() and any(d.iterdir()) for d in path.glob("iter_*"))


def check_import_targets(cells: list[PlannedCell], profile: ProfileSpec) -> None:
    """Raise ConfigError naming the first model whose import target is somebody else's data
    (read-only: run before anything is submitted)."""
    for pc in {pc.model.name: pc for pc in cells}.values():
        target = model_path(pc.model, profile)
        check_import_target(target, model_path_field(pc.model, profile), checkpoint_complete(target))


def prepare_import_target(planned: PlannedCell, profile: ProfileSpec) -> Path:
    """Return the import target of ``planned``'s model after checking it may be written and, unless it
    is a complete checkpoint (reused as is), marking it as ours before the importer replaces it."""
    target = model_path(planned.model, profile)
    complete = checkpoint_complete(target)
    check_import_target(target, model_path_field(planned.model, profile), complete)
    if not complete:
        claim_import_target(target)
    return target


def initial_result(plan: CellPlan, status: str = "pending") -> CellResult:
    """Return the stored row of a cell before it runs."""
    p = plan.profile
    return CellResult(plan.run_id, plan.planned.cell, plan.planned.model, p.workload, p.device,
                      p.cluster, status=status, cell_dir=str(plan.cell_dir), command=plan.command)


def run_local_attempt(plan: CellPlan, slots: SlotPool, store: ResultsStore, attempt: int,
                      launcher: LocalLauncher | None = None) -> CellResult:
    """Return the stored result of one local attempt of ``plan`` (every attempt is recorded)."""
    launcher = launcher or LocalLauncher()
    key = plan.planned.cell.key
    slots.acquire(plan.planned.cell.gpus, cancel=CANCEL_ALL)
    try:
        store.record_attempt(plan.run_id, key, attempt, status="running")
        store.save_cell(replace(initial_result(plan, "running"), attempts=attempt,
                                started_at=datetime.now(UTC)))
        attempt_dir = plan.cell_dir if attempt == 1 else plan.cell_dir / f"attempt-{attempt}"
        run = launcher.run(plan.argv, world=plan.planned.cell.gpus, cell_dir=attempt_dir,
                           env=plan.env, timeout_s=plan.profile.cell_timeout_s, cancel=CANCEL_ALL)
    except LaunchError as exc:
        return _store_launch_failure(plan, store, attempt, str(exc))
    finally:
        slots.release(plan.planned.cell.gpus)
    log_text = read_log_text(run.stdout_path, run.stderr_path)
    outcome, metrics = evaluate(log_text, read_memory_dir(attempt_dir / "memory"), run.returncode,
                                run.wall_clock_s, run.cancelled, plan)
    status = "completed" if outcome.ok else ("cancelled" if run.cancelled else "failed")
    result = replace(initial_result(plan, status), failure_class=outcome.failure_class.value,
                     reason=outcome.reason, attempts=attempt, exit_code=run.returncode,
                     started_at=run.started_at, finished_at=run.finished_at,
                     cell_dir=str(attempt_dir), metrics=metrics)
    store.record_attempt(plan.run_id, key, attempt, status=status, exit_code=run.returncode,
                         failure_class=outcome.failure_class.value, reason=outcome.reason,
                         finished_at=datetime.now(UTC))
    store.save_cell(result)
    return result


def _store_launch_failure(plan: CellPlan, store: ResultsStore, attempt: int, reason: str) -> CellResult:
    status = "cancelled" if CANCEL_ALL.is_set() else "failed"
    klass = "cancelled" if status == "cancelled" else "launch_failed"
    result = replace(initial_result(plan, status), failure_class=klass, reason=reason, attempts=attempt,
                     finished_at=datetime.now(UTC))
    store.record_attempt(plan.run_id, plan.planned.cell.key, attempt, status=status,
                         failure_class=klass, reason=reason, finished_at=datetime.now(UTC))
    store.save_cell(result)
    return result


def import_model_local(planned: PlannedCell, profile: ProfileSpec, argv: list[str],
                       target: Path, log_root: Path) -> str:
    """Import one model with the local launcher unless already complete; return what happened.

    Raises:
        LaunchError: the import command failed (its log path is in the message).
    """
    if checkpoint_complete(target):
        return "skipped"
    log_dir = log_root / planned.model.name
    run = LocalLauncher().run(argv, world=1, cell_dir=log_dir, env=profile.env,
                              timeout_s=profile.cell_timeout_s, cancel=CANCEL_ALL)
    if run.returncode != 0 or not checkpoint_complete(target):
        tail = read_log_text(run.stderr_path)[-500:]
        raise LaunchError(f"import of {planned.model.name} failed (exit {run.returncode}); "
                          f"see {log_dir}: {tail}")
    return "imported"
