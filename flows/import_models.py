"""``import-models``: import every base model a matrix needs, once (skips existing checkpoints)."""

from __future__ import annotations

from prefect import flow

from scaling_matrix.config.loading import load_matrix, load_profile
from scaling_matrix.errors import ConfigError
from scaling_matrix.matrix import plan_cells
from tasks.imports import import_model


@flow(name="import-models")
def import_models(matrix: str = "smoke", profile: str = "local") -> dict[str, str]:
    """Return {model: 'imported'|'skipped'} after importing the matrix's models."""
    prof = load_profile(profile)
    if prof.launcher != "local":
        raise ConfigError("profile.launcher", f"'{prof.launcher}' imports are not available yet",
                          "import on the cluster by hand or use the local profile")
    first_cell_of_model = {pc.model.name: pc for pc in plan_cells(load_matrix(matrix), prof)}
    return {name: import_model(pc, prof) for name, pc in first_cell_of_model.items()}
