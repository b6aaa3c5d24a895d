"""Import a base model once, on the run's backend, never over somebody else's data.

The import is a one-rank job like any other (``cells.import_spec``): the same backend, the same
watcher and the same cancel token as the cells of its run. An import target is written only when
it is absent, empty or ours (``ownership``); a complete checkpoint is reused as it is.
"""

from __future__ import annotations

from pathlib import Path

from scaling_matrix.adapters.outputs import read_log_text
from scaling_matrix.backends.base import Handle, JobSpec, JobState
from scaling_matrix.config.models import ProfileSpec
from scaling_matrix.errors import LaunchError
from scaling_matrix.execution import RunCore
from scaling_matrix.matrix import PlannedCell
from scaling_matrix.ownership import check_import_target, claim_import_target
from scaling_matrix.paths import model_path, model_path_field
from scaling_matrix.workload import needs_import


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
    for pc in {pc.model.name: pc for pc in cells if needs_import(pc.model)}.values():
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


def running_import(core: RunCore, spec: JobSpec) -> Handle | None:
    """Return a handle on the import of ``spec``'s target still queued or running in the scheduler (an earlier
    orchestrator, killed or still alive, submitted it), or None: two imports never write one folder at once."""
    if not (core.backend.reattaches and spec.comment):
        return None
    job_id = core.backend.find(spec.comment)
    if job_id is None or core.backend.poll([job_id]).get(job_id, JobState.DONE).is_terminal:
        return None
    return core.backend.attach(job_id, spec)


def import_model(planned: PlannedCell, profile: ProfileSpec, spec: JobSpec, core: RunCore) -> str:
    """Import ``planned``'s model with ``spec`` unless already complete; return 'imported' or 'skipped'.

    Raises:
        ConfigError: the target holds somebody else's data (nothing is started).
        LaunchError: the import failed, was cancelled or timed out (its log is named in the message).
    """
    target = prepare_import_target(planned, profile)  # never someone else's folder
    if checkpoint_complete(target):
        return "skipped"
    name = planned.model.name
    handle = running_import(core, spec) or core.backend.submit(spec)
    end = core.wait(handle)
    if end.cancelled:
        raise LaunchError(f"import of {name} cancelled or timed out (job {handle.id})")
    if end.error is None and end.returncode == 0 and checkpoint_complete(target):
        return "imported"
    state = end.scheduler.state if end.scheduler else f"exit {end.returncode}"
    where = end.log_paths[-1] if end.log_paths else spec.workdir
    tail = read_log_text(*end.log_paths)[-500:]
    raise LaunchError(f"import of {name} failed ({end.error or state}); see {where}: {tail}")


__all__ = ["check_import_targets", "checkpoint_complete", "import_model", "prepare_import_target", "running_import"]
