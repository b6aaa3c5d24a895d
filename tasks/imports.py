"""Model import task (idempotent: skips checkpoints already imported) and the fan-out over models."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from scaling_matrix.backends.base import JobSpec
from scaling_matrix.config.models import ProfileSpec
from scaling_matrix.execution import RunCore
from scaling_matrix.imports import import_model
from scaling_matrix.matrix import PlannedCell
from scaling_matrix.planning import first_cell_per_model


@task(name="import-model", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=2)
def import_model_task(planned: PlannedCell, profile: ProfileSpec, spec: JobSpec, core: RunCore) -> str:
    """Import ``planned``'s model with ``spec`` on the run's backend; return 'imported' or 'skipped'."""
    return import_model(planned, profile, spec, core)


def import_all(cells: list[PlannedCell], profile: ProfileSpec, specs: dict[str, JobSpec],
               core: RunCore) -> dict[str, str]:
    """Return {model: 'imported'|'skipped'|'failed: <reason>'} for every model with an import job in
    ``specs``; one model failing spares the others."""
    futures = {name: import_model_task.with_options(task_run_name=f"import-{name}").submit(pc, profile,
                                                                                          specs[name], core)
               for name, pc in first_cell_per_model(cells).items() if name in specs}
    outcome: dict[str, str] = {}
    for name, fut in futures.items():
        try:
            outcome[name] = fut.result()
        except Exception as exc:  # noqa: BLE001 - reported per model, its cells are stored failed
            outcome[name] = f"failed: {exc}"
    return outcome
