"""Preflight task: ``sbatch --test-only`` every job of a run before anything is submitted."""

from __future__ import annotations

from prefect import task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from scaling_matrix.imports import check_import_targets
from scaling_matrix.planning import RunPlan
from scaling_matrix.preflight import require_fit, test_every_job, wants_preflight
from tasks.artifacts import artifact_key


@task(name="preflight", cache_policy=NO_CACHE)
def check_preflight(run: RunPlan) -> int:
    """Return the number of jobs SLURM would accept after publishing every verdict as a table.

    Raises:
        PreflightRejected: SLURM would refuse some job (one line per job, in SLURM's words).
    """
    verdicts = test_every_job(run)
    create_table_artifact([{"job": v.job, "fits": v.fits, "slurm": v.message} for v in verdicts],
                          key=artifact_key("preflight", run.matrix.name),
                          description=f"sbatch --test-only of every job of run {run.run_id}")
    require_fit(run, verdicts)
    return len(verdicts)


@task(name="clear-to-submit", cache_policy=NO_CACHE)
def clear_to_submit(run: RunPlan, preflight: bool | None) -> None:
    """Return once nothing stands in the run's way: no import target is somebody else's data and, when
    asked (or the profile's ``slurm.preflight``), SLURM would accept every job.

    Raises:
        ConfigError: an import target holds data scaling-matrix did not create; ``--preflight`` on a
            profile without SLURM; PreflightRejected per refused job.
    """
    check_import_targets(run.cells, run.profile)  # never import over somebody else's folder
    if wants_preflight(run.profile, preflight):
        check_preflight(run)
