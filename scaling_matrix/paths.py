"""Where things live on disk: ``$SCALING_HOME`` (default ``./.scaling``) and its layout."""

from __future__ import annotations

import os
from pathlib import Path

from scaling_matrix.config.models import CellSpec, ModelSpec, ProfileSpec


def scaling_home() -> Path:
    """Return ``$SCALING_HOME`` as an absolute path (default ``./.scaling``)."""
    return Path(os.environ.get("SCALING_HOME", ".scaling")).expanduser().resolve()


def results_url() -> str:
    """Return the results DB URL: ``$SCALING_DB_URL`` or SQLite at ``$SCALING_HOME/results.db``."""
    return os.environ.get("SCALING_DB_URL") or f"sqlite:///{scaling_home() / 'results.db'}"


def run_dir(run_id: str) -> Path:
    """Return the directory of one run: ``$SCALING_HOME/runs/<run-id>``."""
    return scaling_home() / "runs" / run_id


def cell_dir(run_id: str, cell: CellSpec) -> Path:
    """Return the directory of one cell: ``$SCALING_HOME/runs/<run-id>/<cell-slug>``."""
    return run_dir(run_id) / cell.slug


def model_path(model: ModelSpec, profile: ProfileSpec) -> Path:
    """Return where ``model``'s imported checkpoint lives for ``profile``."""
    if model.name in profile.model_paths:
        return Path(profile.model_paths[model.name])
    base = Path(profile.models_dir) if profile.models_dir else scaling_home() / "models"
    return base / model.name
