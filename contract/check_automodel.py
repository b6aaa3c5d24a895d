"""Contract checker for NeMo AutoModel recipes: runs INSIDE the automodel contract venv, never the project's.

Input: the JSON document ``scaling-matrix automodel --json`` prints (``{"cells": [{"key", "config",
"argv", "nproc_per_node", "architecture"}]}``). For each rendered recipe it uses the library's own code,
in the order the ``automodel`` CLI does:

1. the CLI's argument parser (``nemo_automodel.cli.app.build_parser``) on the rendered launch argv;
2. the recipe target exactly as the CLI resolves it (``cli.utils.load_yaml`` + ``resolve_recipe_name``,
   then the launcher's ``resolve_recipe_cls``), and the CLI's config loader
   (``components.config._arg_parser.parse_args_and_load_config``: YAML + ``_target_`` resolution);
3. every ``_target_`` section's keys against the explicit signature of its target (not ``**kwargs``);
4. the typed sections the recipe builds in ``setup()`` (``recipes._typed_config.RecipeConfig``: step
   scheduler, optimizer, dataloaders, loss, checkpoint, …), ``recipes._dist_utils.parse_distributed_section``,
   and the model's parallelism capabilities in AutoModel's registry (``query_capabilities``);
5. PEFT: ``cfg.peft.instantiate()`` (what ``setup()`` calls) and each field's type against ``PeftConfig``;
6. top-level sections the recipe never reads (silently ignored, e.g. a 0.7 ``rng:`` section).

Prints a JSON report; exit status 1 when anything failed (2: bad input).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import inspect
import json
import os
import re
import sys
import typing
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

CLI_KEYS = {"recipe", "skypilot", "nemo_run"}  # read by the CLI itself (nemo_automodel/cli/app.py)
TYPED_SECTIONS = ("step_scheduler", "lr_scheduler", "optimizer", "dataloader", "validation_dataloaders",
                  "loss_fn", "checkpoint", "freeze_config", "mfu", "prewarm", "embedding_row_repair",
                  "domain_mixture", "wandb", "mlflow", "comet")


def explicit_parameter(fn: Any, name: str) -> str | None:
    """Return None if ``name`` is an explicit parameter of ``fn``, else why not."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError) as exc:
        return f"cannot read the signature of {fn!r}: {exc}"
    where = f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', fn)}"
    param = params.get(name)
    if param is not None and param.kind not in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
        return None
    if any(p.kind == p.VAR_KEYWORD for p in params.values()):
        return f"'{name}' is not an explicit parameter of {where}: it would vanish into **kwargs"
    return f"{where} has no parameter '{name}'"


def target_errors(node: Any, path: str) -> list[str]:
    """Return key errors of every ``_target_`` mapping under ``node`` (the loaded, resolved config)."""
    errors: list[str] = []
    if isinstance(node, dict):
        target = node.get("_target_")
        if target is not None and not callable(target):
            errors.append(f"{path}._target_: {target!r} does not resolve to a callable")
        elif target is not None:
            errors += [f"{path}.{k}: {p}" for k in node if k != "_target_"
                       for p in [explicit_parameter(target, k)] if p]
        for key, value in node.items():
            errors += target_errors(value, f"{path}.{key}" if path else str(key))
    return errors


def type_errors(obj: Any, path: str) -> list[str]:
    """Return fields of dataclass ``obj`` whose value does not match its annotation (lists, scalars, Literal)."""
    errors = []
    hints = typing.get_type_hints(type(obj))
    for field in dataclasses.fields(obj):
        value, hint = getattr(obj, field.name), hints.get(field.name)
        origin = typing.get_origin(hint) or hint
        if origin is typing.Literal:
            ok = value in typing.get_args(hint)
        elif origin in (list, tuple):
            items_ok = all(isinstance(v, str) for v in value) if typing.get_args(hint) == (str,) else True
            ok = isinstance(value, (list, tuple)) and items_ok
        elif hint is bool:
            ok = isinstance(value, bool)
        elif hint in (int, float):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        elif hint is str:
            ok = isinstance(value, str)
        else:
            continue
        if not ok:
            errors.append(f"{path}.{field.name}: {value!r} is not a {hint}")
    return errors


def read_keys(recipe_cls: type) -> str:
    """Return the source text in which the recipe (and its typed config/CLI) reads top-level keys."""
    import nemo_automodel.cli.app as app
    import nemo_automodel.recipes._dist_utils as dist
    import nemo_automodel.recipes._typed_config as typed

    modules = {inspect.getmodule(c) for c in recipe_cls.__mro__} | {app, dist, typed}
    return "\n".join(inspect.getsource(m) for m in modules if m is not None and m.__name__.startswith("nemo_"))


def unread_sections(raw: dict[str, Any], source: str) -> list[str]:
    """Return top-level keys the recipe never reads (a string literal "key" / "key.…" or cfg.key)."""
    unread = []
    for key in raw:
        literal = re.search(rf"""["']{re.escape(key)}[."']|(cfg|_raw)\.{re.escape(key)}\b""", source)
        if key not in CLI_KEYS and not literal and not key.startswith("validation_dataset"):
            unread.append(f"{key}: never read by the recipe: silently ignored")
    return unread


def capability_errors(architecture: str | None, sizes: dict[str, int]) -> list[str]:
    """Return parallel sizes the model's AutoModel implementation cannot run (AutoModel's registry)."""
    from nemo_automodel._transformers.model_capabilities import query_capabilities
    from nemo_automodel._transformers.registry import ModelRegistry

    if not architecture:
        return ["architecture: unknown (the project's recipe registry names none)"]
    if not ModelRegistry.has_custom_model(architecture):
        return ([f"distributed.ep_size={sizes['ep_size']}: {architecture} has no AutoModel implementation, "
                 "so no expert parallelism"] if sizes["ep_size"] > 1 else [])
    caps = query_capabilities(ModelRegistry.get_model_cls_from_model_arch(architecture))
    return [f"distributed.{k}={sizes[k]}: {architecture} does not support {flag[9:].upper()} in AutoModel"
            for k, flag in (("tp_size", "supports_tp"), ("cp_size", "supports_cp"),
                            ("pp_size", "supports_pp"), ("ep_size", "supports_ep"))
            if sizes.get(k, 1) > 1 and not getattr(caps, flag)]


def check_cli(item: dict[str, Any]) -> tuple[list[str], type | None]:
    """Steps 1-2: the launch argv and the recipe target, as ``automodel`` resolves them."""
    from nemo_automodel.cli.app import build_parser
    from nemo_automodel.cli.utils import load_yaml, resolve_recipe_name
    from nemo_automodel.components.launcher.interactive import resolve_recipe_cls

    argv = item["argv"]
    if Path(argv[0]).name != "automodel":
        return [f"argv: {argv[0]!r} is not the automodel CLI"], None
    try:
        args, extra = build_parser().parse_known_args(argv[1:])
    except SystemExit:
        return [f"argv: automodel's parser rejects {argv[1:]}"], None
    errors = [f"argv: unexpected extra arguments {extra}"] if extra else []
    if args.nproc_per_node != item["nproc_per_node"]:
        errors.append(f"argv: --nproc-per-node {args.nproc_per_node} != {item['nproc_per_node']}")
    raw = load_yaml(args.config)
    section = raw.get("recipe") if isinstance(raw, dict) else None
    target = section.get("_target_") if isinstance(section, dict) else section
    if not isinstance(target, str) or not target.strip():
        return errors + ["recipe: YAML config must specify a recipe target (the CLI exits here)"], None
    try:
        return errors, resolve_recipe_cls(resolve_recipe_name(target.strip()))
    except (ValueError, ImportError, AttributeError) as exc:
        return errors + [f"recipe: {exc}"], None


def check_config(item: dict[str, Any], recipe_cls: type) -> list[str]:
    """Steps 3-6 on the config as the CLI loads it."""
    from nemo_automodel.components.config._arg_parser import parse_args_and_load_config
    from nemo_automodel.recipes._dist_utils import parse_distributed_section
    from nemo_automodel.recipes._typed_config import RecipeConfig

    cfg = parse_args_and_load_config(item["config"], argv=[])
    raw = cfg.to_dict()
    errors = target_errors(raw, "") + unread_sections(raw, read_keys(recipe_cls))
    typed = RecipeConfig(cfg)
    for section in TYPED_SECTIONS:
        try:
            getattr(typed, section)
        except Exception as exc:  # noqa: BLE001 - whatever the typed boundary raises is a violation
            errors.append(f"{section}: {type(exc).__name__}: {exc}")
    try:
        sizes = parse_distributed_section(raw.get("distributed") or {})
        errors += capability_errors(item.get("architecture"), sizes)
    except Exception as exc:  # noqa: BLE001
        errors.append(f"distributed: {type(exc).__name__}: {exc}")
    if cfg.get("peft", None) is not None:
        try:
            errors += type_errors(cfg.peft.instantiate(), "peft")
        except Exception as exc:  # noqa: BLE001
            errors.append(f"peft: {type(exc).__name__}: {exc}")
    return errors


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("input", type=Path, help="JSON document of `scaling-matrix automodel --json`")
    try:
        cells = json.loads(ap.parse_args().input.read_text())["cells"]
    except (OSError, ValueError, KeyError) as exc:
        print(f"bad input: {exc}", file=sys.stderr)
        return 2
    report: dict[str, Any] = {"checked": 0, "failures": []}
    with contextlib.redirect_stdout(sys.stderr):  # AutoModel's loader prints "cfg-path: …"
        check_all(cells, report)
    print(json.dumps(report, indent=1))
    return 1 if report["failures"] or not report["checked"] else 0


def check_all(cells: list[dict[str, Any]], report: dict[str, Any]) -> None:
    """Check every cell, appending to ``report``."""
    for item in cells:
        report["checked"] += 1
        errors, recipe_cls = check_cli(item)
        if recipe_cls is not None:
            try:
                errors += check_config(item, recipe_cls)
            except Exception as exc:  # noqa: BLE001 - the loader itself rejected the file
                errors.append(f"load: {type(exc).__name__}: {exc}")
        if errors:
            report["failures"].append({"id": item["key"], "errors": errors})


if __name__ == "__main__":
    sys.exit(main())
