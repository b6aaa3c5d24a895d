"""Model import task (idempotent: skips checkpoints already imported)."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from scaling_matrix.cells import plan_import
from scaling_matrix.config.models import ProfileSpec
from scaling_matrix.adapters.runner import SubprocessRunner
from scaling_matrix.adapters.slurm import SlurmClient
from scaling_matrix.execution import CANCEL_ALL, import_model_local, prepare_import_target
from scaling_matrix.execution_slurm import import_model_slurm
from scaling_matrix.matrix import PlannedCell
from scaling_matrix.paths import scaling_home


@task(name="import-model", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=2)
def import_model(planned: PlannedCell, profile: ProfileSpec) -> str:
    """Import ``planned``'s model for ``profile``; return 'imported' or 'skipped'."""
    target: Path = prepare_import_target(planned, profile)  # never someone else's folder
    argv = plan_import(planned, profile)
    logs = scaling_home() / "import-logs"
    if profile.launcher == "slurm":
        client = SlurmClient(SubprocessRunner())
        return import_model_slurm(planned, profile, argv, target, logs, client, CANCEL_ALL)
    return import_model_local(planned, profile, argv, target, logs)
