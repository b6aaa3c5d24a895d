"""Where things live on disk: ``$SCALING_HOME`` (default ``./.scaling``) and its layout.

Every path built from user input (a run id, a model name) is resolved and must stay inside the
directory it belongs to; run ids match :data:`RUN_ID`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from scaling_matrix.config.models import CellSpec, ModelSpec, ProfileSpec
from scaling_matrix.config.secrets import shown
from scaling_matrix.errors import ConfigError

#: Run ids: what ``new_run_id`` makes (``20250101-020000-ab12cd``) and simple names (``nightly-1``).
RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,79}")
RUN_ID_FIX = ("use letters, digits, '.', '_' and '-' (at most 80, starting with a letter or digit), "
              "e.g. an id listed by `scaling-matrix runs`")


def check_run_id(run_id: object, field: str = "run_id") -> str:
    """Return ``run_id`` when it matches :data:`RUN_ID` (and has no '..'); ConfigError naming ``field`` otherwise."""
    if not isinstance(run_id, str) or not RUN_ID.fullmatch(run_id) or ".." in run_id:
        raise ConfigError(field, "is not a valid run id", RUN_ID_FIX)
    return run_id


def inside(base: Path, *parts: str) -> Path:
    """Return ``base/parts`` resolved (symlinks followed); ConfigError when it leaves ``base``."""
    root = base.resolve()
    target = root.joinpath(*parts).resolve()
    if target != root and root not in target.parents:
        raise ConfigError(shown("/".join(parts), 80), f"leads outside {shown(str(root), 120)}",
                          "use a plain name without '/', '..' or links that point elsewhere")
    return target


def scaling_home() -> Path:
    """Return ``$SCALING_HOME`` as an absolute path (default ``./.scaling``)."""
    return Path(os.environ.get("SCALING_HOME", ".scaling")).expanduser().resolve()


def results_url() -> str:
    """Return the results DB URL: ``$SCALING_DB_URL`` or SQLite at ``$SCALING_HOME/results.db``."""
    return os.environ.get("SCALING_DB_URL") or f"sqlite:///{scaling_home() / 'results.db'}"


def run_dir(run_id: str) -> Path:
    """Return the directory of one run: ``$SCALING_HOME/runs/<run-id>`` (the id checked first)."""
    return inside(scaling_home() / "runs", check_run_id(run_id))


def cell_dir(run_id: str, cell: CellSpec) -> Path:
    """Return the directory of one cell: ``$SCALING_HOME/runs/<run-id>/<cell-slug>``."""
    return inside(run_dir(run_id), cell.slug)


def model_path(model: ModelSpec, profile: ProfileSpec) -> Path:
    """Return where ``model``'s imported checkpoint lives for ``profile`` (an explicit
    ``model_paths`` entry, else ``<models_dir or $SCALING_HOME/models>/<name>``)."""
    if model.name in profile.model_paths:
        return Path(profile.model_paths[model.name])
    base = Path(profile.models_dir) if profile.models_dir else scaling_home() / "models"
    return inside(base, model.name)


def model_path_field(model: ModelSpec, profile: ProfileSpec) -> str:
    """Return the profile key that decides ``model``'s checkpoint path (for error messages)."""
    if model.name in profile.model_paths:
        return f"profile {profile.name}: model_paths.{model.name}"
    return f"profile {profile.name}: models_dir" if profile.models_dir else "$SCALING_HOME/models"
