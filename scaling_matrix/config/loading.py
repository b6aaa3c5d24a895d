"""Load matrices and profiles from YAML presets or paths, with errors that name the field and the fix.

Every file goes through the defensive reader (``safe_yaml``) and the secret scan before validation,
so a hostile or careless file is one clear ConfigError, never a traceback, an echo or a hang.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from scaling_matrix.config.messages import config_error
from scaling_matrix.config.models import MAX_REPEATS, MatrixSpec, ProfileSpec
from scaling_matrix.config.safe_yaml import load_yaml, read_text
from scaling_matrix.config.secrets import SECRET_FIX, find_secrets, shown
from scaling_matrix.errors import ConfigError, PresetNotFoundError, Problem

M = TypeVar("M", bound=BaseModel)
VARIANTS = ("faithful", "corrected")


def preset_names(kind: str) -> list[str]:
    """Return the names of the shipped presets of ``kind`` ('matrices' or 'profiles')."""
    folder = resources.files("scaling_matrix") / "presets" / kind
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def _source_text(kind: str, name_or_path: str) -> tuple[str, str]:
    """Return (text, origin) of a preset name or a YAML file path."""
    field = "--matrix" if kind == "matrices" else "--profile"
    path = Path(name_or_path)
    if path.suffix in {".yaml", ".yml"} or "/" in name_or_path or path.exists():
        origin = shown(name_or_path, 160)
        if not path.is_file():
            problem = "is a directory" if path.is_dir() else "does not exist"
            raise PresetNotFoundError(f"{field} {origin}", problem,
                                      f"pass an existing YAML file or one of {preset_names(kind)}")
        return read_text(path, origin), origin
    ref = resources.files("scaling_matrix") / "presets" / kind / f"{name_or_path}.yaml"
    if name_or_path not in preset_names(kind) or not ref.is_file():
        raise PresetNotFoundError(field, f"no preset named '{shown(name_or_path)}'",
                                  f"use one of {preset_names(kind)} or a path to a YAML file")
    return ref.read_text(encoding="utf-8"), f"preset {name_or_path}"


def _read_yaml(kind: str, name_or_path: str) -> tuple[dict[str, Any], str]:
    text, origin = _source_text(kind, name_or_path)
    data = load_yaml(text, origin)
    if data is None:
        raise ConfigError(origin, "is empty", "start the file with 'name: ...'")
    if not isinstance(data, dict):
        raise ConfigError(origin, f"has a {type(data).__name__} at the top level, not a mapping",
                          "start the file with 'name: ...' and key: value lines")
    secrets = [Problem(f"{origin}: {path}", what, SECRET_FIX) for path, what in find_secrets(data)]
    if secrets:
        raise ConfigError.of(secrets)
    return data, origin


def validation_error_to_config_error(exc: ValidationError, prefix: str) -> ConfigError:
    """Return a ConfigError naming every invalid field as a dotted/indexed path (one line each)."""
    return config_error(exc, prefix)


def parse_model(cls: type[M], data: dict[str, Any], origin: str) -> M:
    """Return ``cls`` validated from ``data``; errors become ConfigError naming the field."""
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise config_error(exc, origin, cls) from None


def matrix_overrides(variant: Any, repeats: Any) -> dict[str, Any]:
    """Return the CLI/flow overrides that are set; ConfigError naming ``--variant``/``--repeats`` if invalid."""
    problems = []
    if variant is not None and variant not in VARIANTS:
        problems.append(Problem("--variant", "must be 'faithful' or 'corrected'",
                                "use --variant faithful or --variant corrected"))
    if repeats is not None and (type(repeats) is not int or not 1 <= repeats <= MAX_REPEATS):
        nearest = min(max(repeats, 1), MAX_REPEATS) if type(repeats) is int else 1
        problems.append(Problem("--repeats", f"must be a whole number from 1 to {MAX_REPEATS}",
                                f"use --repeats {nearest}"))
    if problems:
        raise ConfigError.of(problems)
    return {k: v for k, v in {"variant": variant, "repeats": repeats}.items() if v is not None}


def load_matrix(name_or_path: str, *, variant: str | None = None, repeats: int | None = None) -> MatrixSpec:
    """Return the validated matrix preset ``name_or_path`` (a preset name or a YAML path), with
    ``variant`` and ``repeats`` (when given) replacing the file's; a bad override is a ConfigError
    naming ``--variant``/``--repeats``, checked before the file is read."""
    overrides = matrix_overrides(variant, repeats)
    data, origin = _read_yaml("matrices", name_or_path)
    return parse_model(MatrixSpec, {**data, **overrides}, origin)


def load_profile(name_or_path: str) -> ProfileSpec:
    """Return the validated cluster profile ``name_or_path`` (a preset name or a YAML path)."""
    data, origin = _read_yaml("profiles", name_or_path)
    return parse_model(ProfileSpec, data, origin)


def _json_int_keys(data: dict[str, Any]) -> dict[str, Any]:
    """Return ``data`` with ``slurm.constraint_by_gpus`` keys as numbers again: a JSON document (a
    saved block) can only hold text keys, and ``"8"`` there is the 8 the profile was saved with."""
    slurm = data.get("slurm")
    table = slurm.get("constraint_by_gpus") if isinstance(slurm, dict) else None
    if not isinstance(table, dict):
        return data
    fixed = {int(k) if isinstance(k, str) and k.isascii() and k.isdigit() and len(k) < 8 else k: v
             for k, v in table.items()}
    return {**data, "slurm": {**slurm, "constraint_by_gpus": fixed}}


def profile_from_data(data: Any, origin: str) -> ProfileSpec:
    """Return the profile in ``data`` (e.g. a block's), checked exactly as a profile file is: secrets
    by shape and name first, then the strict types; ConfigError naming ``origin`` and the key path."""
    if isinstance(data, ProfileSpec):
        data = data.model_dump()
    if not isinstance(data, dict):
        raise ConfigError(origin, "is not a mapping of profile fields", "write name:, launcher:, workload: ...")
    data = _json_int_keys(data)
    secrets = [Problem(f"{origin}: {path}", what, SECRET_FIX) for path, what in find_secrets(data)]
    try:
        profile = parse_model(ProfileSpec, data, origin)
    except ConfigError as exc:  # every problem at once; a secret's key is named once
        flagged = {p.field for p in secrets}
        raise ConfigError.of([*secrets, *(p for p in exc.problems if p.field not in flagged)]) from None
    if secrets:
        raise ConfigError.of(secrets)
    return profile
