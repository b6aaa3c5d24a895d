"""Pydantic validation errors as one line per problem: the key path, what is wrong and a concrete fix.

Pure. Never prints the input (it may be long, hostile or a secret): only bounds, allowed values and
numbers derived from the input (the nearest whole number).
"""

from __future__ import annotations

import math
import typing
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ValidationError

from scaling_matrix.config.secrets import shown
from scaling_matrix.config.types import suggest
from scaling_matrix.errors import ConfigError, Problem

MAX_PROBLEMS = 12


def key_path(loc: tuple[Any, ...] | list[Any]) -> str:
    """Return ``loc`` as ``cells[3].global_batch_size`` (keys printed safely, at most 40 characters each)."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part != "[key]":
            out += ("." if out else "") + shown(str(part))
    return out


def _bound(ctx: dict[str, Any], key: str) -> Any:
    value = ctx.get(key)
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _number_fix(err: dict[str, Any]) -> tuple[str, str]:
    value = err.get("input")
    if isinstance(value, bool):
        return "must be a number, not true/false", "write a number such as 1"
    if isinstance(value, float) and math.isfinite(value):
        lo, hi = math.floor(value), math.ceil(value)
        return "must be a whole number", f"use {lo}" + (f" or {hi}" if hi != lo else "")
    if isinstance(value, str):
        return "must be a number, not text", "write the number without quotes"
    return "must be a whole number" if err["type"].startswith("int") else "must be a number", "write a number such as 1"


def _describe(err: dict[str, Any], fields: set[str] | None) -> tuple[str, str]:
    """Return (problem, fix) of one pydantic error, without echoing its input."""
    kind, ctx = err["type"], err.get("ctx") or {}
    if kind == "invalid_value":
        return err["msg"], ctx.get("fix", "")
    if kind == "extra_forbidden":
        name = str(err["loc"][-1])
        return "is not a known key", (suggest(name, fields) if fields else "remove it")
    if kind == "missing":
        return "is required", "add it"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected')}", f"use one of {ctx.get('expected')}"
    name = next((str(p) for p in reversed(err["loc"]) if isinstance(p, str) and p != "[key]"), "it")
    if kind == "greater_than_equal":
        return f"must be at least {_bound(ctx, 'ge')}", f"set {name} to {_bound(ctx, 'ge')} or more"
    if kind == "greater_than":
        return f"must be more than {_bound(ctx, 'gt')}", f"set {name} to a number above {_bound(ctx, 'gt')}"
    if kind in ("less_than_equal", "less_than"):
        bound = _bound(ctx, "le") if kind.endswith("equal") else _bound(ctx, "lt")
        return f"must be at most {bound}", f"set {name} to {bound} or less"
    if kind in ("int_type", "int_parsing", "int_from_float", "float_type", "float_parsing"):
        return _number_fix(err)
    if kind == "finite_number":
        return "must be a finite number (not .inf or .nan)", "write a finite number"
    if kind in ("bool_type", "bool_parsing"):
        return "must be true or false", "write true or false without quotes"
    if kind == "string_type":
        return "must be text", "write it as text (quote numbers, e.g. '60')"
    if kind in ("list_type", "too_short", "too_long"):
        return _collection(kind, ctx)
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return "must be a mapping of keys to values", "write key: value lines under it"
    return "is not valid", "see the field's allowed values in the README"


def _collection(kind: str, ctx: dict[str, Any]) -> tuple[str, str]:
    if kind == "list_type":
        return "must be a list", "write [a, b] or one '- item' per line"
    if kind == "too_short":
        return f"needs at least {ctx.get('min_length')} entries", "add entries or remove the key"
    return f"has more than {ctx.get('max_length')} entries", f"keep at most {ctx.get('max_length')}"


def _model_at(cls: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """Return the model class that owns the last key of ``loc`` (for 'did you mean' suggestions)."""
    current: Any = cls
    for part in loc[:-1]:
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            current = field.annotation if field else None
        else:
            args = [a for a in typing.get_args(current) if a is not type(None)]
            current = args[-1] if args else None
    while current is not None and not (isinstance(current, type) and issubclass(current, BaseModel)):
        args = [a for a in typing.get_args(current) if a is not type(None)]
        current = args[-1] if args else None
    return current


def problems(exc: ValidationError, prefix: str, cls: type[BaseModel] | None = None,
             scope: Callable[[tuple[Any, ...]], str] | None = None) -> list[Problem]:
    """Return one :class:`Problem` per error in ``exc`` (at most ``MAX_PROBLEMS``), each field written
    ``prefix: scope.key.path`` (``scope(loc)``: where the failing key was written, e.g. ``cells[3]``)."""
    out = []
    for err in exc.errors(include_url=False)[:MAX_PROBLEMS]:
        loc = tuple(err["loc"])
        owner = _model_at(cls, loc) if cls and err["type"] == "extra_forbidden" else None
        problem, fix = _describe(err, set(owner.model_fields) if owner else None)
        extra = (err.get("ctx") or {}).get("loc")
        path = ".".join(p for p in (scope(loc) if scope else "", key_path(loc), str(extra or "")) if p)
        if loc and loc[-1] == "[key]":
            problem = f"key {problem}"
        out.append(Problem(f"{prefix}: {path}" if path else prefix, problem, fix))
    return out


def config_error(exc: ValidationError, prefix: str, cls: type[BaseModel] | None = None) -> ConfigError:
    """Return a ConfigError listing every problem of ``exc`` (one line each)."""
    return ConfigError.of(problems(exc, prefix, cls))
