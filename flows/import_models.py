"""``import-models``: import every base model a matrix needs, once (skips existing checkpoints)."""

from __future__ import annotations

from prefect import flow

from scaling_matrix.config.loading import load_matrix, load_profile
from scaling_matrix.matrix import plan_cells
from tasks.imports import import_model


@flow(name="import-models")
def import_models(matrix: str = "smoke", profile: str = "local", variant: str | None = None) -> dict[str, str]:
    """Return {model: 'imported'|'skipped'|'failed: <reason>'}; one model failing spares the others.

    ``variant`` ('faithful'|'corrected', None: the file's) picks the cells, so a model that only a
    ``corrected:`` override names is imported too.
    """
    prof = load_profile(profile)
    # only models of cells the profile's release can run (the others were refused or skipped before)
    cells = plan_cells(load_matrix(matrix, variant=variant), prof, skip_unsupported=True)
    first_cell_of_model = {pc.model.name: pc for pc in cells}
    futures = {name: import_model.submit(pc, prof) for name, pc in first_cell_of_model.items()}
    outcome: dict[str, str] = {}
    for name, fut in futures.items():
        try:
            outcome[name] = fut.result()
        except Exception as exc:  # noqa: BLE001 - reported per model, cells are marked failed
            outcome[name] = f"failed: {exc}"
    return outcome
