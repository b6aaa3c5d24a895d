"""What scaling-matrix created, so it deletes or overwrites nothing else.

Two markers, both JSON files the tool writes before it puts anything in place:

- ``<dir>/.scaling-matrix-owner`` inside an output folder it fills (``automodel --out``);
- ``<parent>/.<name>.scaling-matrix-import`` beside a model import target, because the importer
  (NeMo, and the tiny engine in the same grammar) replaces the target folder wholesale with
  ``overwrite=True``, so a marker inside it would not survive an interrupted import.

A folder without its marker is somebody else's data: an error naming the path and the fix, never
an overwrite. An empty folder holds nothing to lose and may be claimed.
"""

from __future__ import annotations

import getpass
import json
from datetime import UTC, datetime
from pathlib import Path

from scaling_matrix.config.secrets import shown
from scaling_matrix.errors import ConfigError

OWNER_FILE = ".scaling-matrix-owner"
IMPORT_SUFFIX = ".scaling-matrix-import"


def _marker_text(target: Path) -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return json.dumps({"tool": "scaling-matrix", "path": str(target), "user": user,
                       "created_at": datetime.now(UTC).isoformat()}) + "\n"


def import_marker(target: Path) -> Path:
    """Return the marker file that says scaling-matrix owns the import target ``target``."""
    return target.parent / f".{target.name}{IMPORT_SUFFIX}"


def owns_import(target: Path) -> bool:
    """Return True when ``target`` carries scaling-matrix's import marker for exactly this path."""
    marker = import_marker(target)
    try:
        return marker.is_file() and json.loads(marker.read_text()).get("path") == str(target)
    except (OSError, ValueError):
        return False


def _is_empty_dir(path: Path) -> bool:
    try:
        return path.is_dir() and not path.is_symlink() and next(path.iterdir(), None) is None
    except OSError:
        return False


def check_import_target(target: Path, field: str, complete: bool) -> None:
    """Raise ConfigError unless ``target`` may be written by an import: absent, empty, ours, or a
    ``complete`` checkpoint (then it is reused, never written)."""
    if not target.exists() and not target.is_symlink():
        return
    where = shown(str(target), 160)
    if complete:
        return
    if target.is_symlink() or not target.is_dir():
        raise ConfigError(field, f"import target {where} exists and is not a folder",
                          "point it at a new folder; scaling-matrix replaces nothing it did not create")
    if owns_import(target) or _is_empty_dir(target):
        return
    raise ConfigError(field, f"import target {where} exists, is not a complete checkpoint and was not "
                      "created by scaling-matrix", "point it at a new folder, or move that folder away "
                      "yourself if you want it re-imported")


def claim_import_target(target: Path) -> None:
    """Write the import marker of ``target`` (creating its parent) before the importer runs."""
    target.parent.mkdir(parents=True, exist_ok=True)
    import_marker(target).write_text(_marker_text(target))


def claim_output_dir(folder: Path, field: str) -> Path:
    """Return ``folder`` resolved, created and marked as ours; ConfigError when it is a file or
    somebody else's non-empty folder."""
    where = shown(str(folder), 160)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(field, f"{where} is a file, not a folder", "pass a new folder name")
    if folder.is_dir() and not (folder / OWNER_FILE).is_file() and not _is_empty_dir(folder):
        raise ConfigError(field, f"{where} already holds files that scaling-matrix did not write",
                          "pass a new or empty folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / OWNER_FILE).write_text(_marker_text(folder.resolve()))
    except OSError as exc:
        raise ConfigError(field, f"{where} cannot be created ({exc.strerror or type(exc).__name__})",
                          "pass a folder you can write to") from None
    return folder.resolve()
