"""``import-models``: import every base model a matrix needs, once (skips existing checkpoints)."""

from __future__ import annotations

from prefect import flow

from blocks.cluster import resolve_profile
from scaling_matrix.config.loading import load_matrix
from scaling_matrix.execution import open_core
from scaling_matrix.matrix import plan_cells
from scaling_matrix.planning import import_jobs
from scaling_matrix.stop import stop_on_signals, token_for_run
from tasks.imports import import_all


@flow(name="import-models")
def import_models(matrix: str = "smoke", profile: str = "local", variant: str | None = None) -> dict[str, str]:
    """Return {model: 'imported'|'skipped'|'failed: <reason>'}; one model failing spares the others.

    ``variant`` ('faithful'|'corrected', None: the file's) picks the cells, so a model that only a
    ``corrected:`` override names is imported too.
    """
    prof = resolve_profile(profile)
    # only models of cells the profile's release can run (the others were refused or skipped before)
    cells = plan_cells(load_matrix(matrix, variant=variant), prof, skip_unsupported=True)
    token = token_for_run()
    with stop_on_signals(token), open_core(prof, None, token) as core:
        return import_all(cells, prof, import_jobs(cells, prof), core)
