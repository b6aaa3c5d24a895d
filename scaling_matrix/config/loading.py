"""Load matrices and profiles from YAML presets or paths, with errors that name the field."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from scaling_matrix.config.models import MatrixSpec, ProfileSpec
from scaling_matrix.errors import ConfigError, PresetNotFoundError

M = TypeVar("M", bound=BaseModel)


def preset_names(kind: str) -> list[str]:
    """Return the names of the shipped presets of ``kind`` ('matrices' or 'profiles')."""
    folder = resources.files("scaling_matrix") / "presets" / kind
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def _read_yaml(kind: str, name_or_path: str) -> tuple[dict[str, Any], str]:
    path = Path(name_or_path)
    if path.suffix in {".yaml", ".yml"} or path.exists():
        if not path.is_file():
            raise PresetNotFoundError(kind[:-1] if kind != "matrices" else "matrix",
                                      f"file {name_or_path!r} does not exist",
                                      f"pass an existing YAML file or one of {preset_names(kind)}")
        text, origin = path.read_text(), str(path)
    else:
        ref = resources.files("scaling_matrix") / "presets" / kind / f"{name_or_path}.yaml"
        if not ref.is_file():
            field = "matrix" if kind == "matrices" else "profile"
            raise PresetNotFoundError(field, f"no preset named {name_or_path!r}",
                                      f"use one of {preset_names(kind)} or a path to a YAML file")
        text, origin = ref.read_text(), f"preset {name_or_path}"
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(origin, f"invalid YAML: {exc}", "fix the YAML syntax") from exc
    if not isinstance(data, dict):
        raise ConfigError(origin, "top level must be a mapping", "start the file with 'name: ...'")
    return data, origin


def validation_error_to_config_error(exc: ValidationError, prefix: str) -> ConfigError:
    """Return a ConfigError naming the first invalid field as a dotted/indexed path."""
    err = exc.errors()[0]
    loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"])
    field = f"{prefix}{loc}" if loc else prefix
    fix = "remove the field" if err["type"] == "extra_forbidden" else _fix_hint(err)
    return ConfigError(field, err["msg"], fix)


def _fix_hint(err: dict[str, Any]) -> str:
    ctx = err.get("ctx") or {}
    if "expected" in ctx:
        return f"use {ctx['expected']}"
    if err["type"] == "missing":
        return "add this required field"
    return f"got {err.get('input')!r}"


def parse_model(cls: type[M], data: dict[str, Any], origin: str) -> M:
    """Return ``cls`` validated from ``data``; errors become ConfigError naming the field."""
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise validation_error_to_config_error(exc, origin) from exc


def load_matrix(name_or_path: str, *, variant: str | None = None, repeats: int | None = None) -> MatrixSpec:
    """Return the validated matrix preset ``name_or_path`` (a preset name or a YAML path), with
    ``variant`` and ``repeats`` (when given) replacing the file's before validation, so a bad
    override is a ConfigError naming the field like a bad file."""
    data, origin = _read_yaml("matrices", name_or_path)
    overrides = {k: v for k, v in {"variant": variant, "repeats": repeats}.items() if v is not None}
    return parse_model(MatrixSpec, {**data, **overrides}, origin + (f" with {overrides}" if overrides else ""))


def load_profile(name_or_path: str) -> ProfileSpec:
    """Return the validated cluster profile ``name_or_path`` (a preset name or a YAML path)."""
    data, origin = _read_yaml("profiles", name_or_path)
    return parse_model(ProfileSpec, data, origin)
