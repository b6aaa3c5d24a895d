"""Planning task: load, validate and render a whole run before anything is stored or submitted."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from blocks.cluster import resolve_profile
from scaling_matrix.config.loading import load_matrix
from scaling_matrix.planning import RunPlan, plan_run
from scaling_matrix.runs import new_run_id


@task(name="plan-run", cache_policy=NO_CACHE)
def plan(matrix: str, profile: str, run_id: str | None, variant: str | None, repeats: int | None,
         skip_unsupported: bool = False) -> RunPlan:
    """Return the rendered plan of ``matrix`` on ``profile`` (a preset, a YAML path or ``block:NAME``).

    Raises:
        ConfigError: bad input, or a job the profile cannot express (nothing written yet).
    """
    return plan_run(load_matrix(matrix, variant=variant, repeats=repeats), resolve_profile(profile),
                    run_id or new_run_id(), skip_unsupported)
