"""Check a rendered Megatron-Bridge command against the release's pinned launch surface. Pure.

Megatron-Bridge cannot be installed here (Python 3.11, no CUDA: see ``scaling_matrix/versions.py``), so
the contract is a pinned copy of what its launcher reads, extracted from the release's source by
``scripts/megatron_bridge_fields.py`` into ``scaling_matrix/data/megatron_bridge-<release>.json``
(tag, commit and Megatron-LM submodule commit recorded in the file). :func:`argv_problems` applies the
rules ``run_recipe.py`` and Hydra/OmegaConf apply at start-up: known options and values, an exported
recipe, a dataset type and preset, and ``section.field=value`` overrides whose section and field exist
on the ConfigContainer dataclasses (OmegaConf struct mode rejects any other key) with a value of the
field's type. Each problem is one line naming the offending word.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent / "data"
_INT = re.compile(r"-?\d+")
_FLOAT = re.compile(r"-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


@lru_cache(maxsize=8)
def load_surface(lock: str) -> dict[str, Any]:
    """Return the pinned launch surface ``scaling_matrix/data/<lock>.json``."""
    return json.loads((DATA / f"{lock}.json").read_text(encoding="utf-8"))


def recipe_problem(surface: dict[str, Any], recipe: str) -> str | None:
    """Return why ``recipe`` cannot be loaded by this release (None: it is exported)."""
    if recipe in surface["recipes"]:
        return None
    stem = recipe.rsplit("_", 2)[0]
    near = sorted(r for r in surface["recipes"] if r.startswith(stem.split("_")[0]))[:6]
    return (f"Megatron-Bridge {surface['version']} exports no recipe {recipe}"
            + (f" (it has {', '.join(near)})" if near else ""))


def _value_problem(key: str, annotation: str, value: str) -> str | None:
    """Return why Hydra/OmegaConf would refuse ``value`` for a field annotated ``annotation``."""
    ann = annotation.replace("typing.", "").replace("Optional[", "").replace(" ", "")
    if value == "null":
        return None if ("None" in annotation or "Optional" in annotation) else f"{key}: null for a non-optional field"
    kinds = {k for k in ("bool", "int", "float", "str", "List", "list") if re.search(rf"\b{k}\b", ann)}
    if not kinds or "str" in kinds or kinds & {"List", "list"} and value.startswith("["):
        return None
    if "bool" in kinds and value in ("true", "false", "True", "False"):
        return None
    if "int" in kinds and _INT.fullmatch(value) or "float" in kinds and _FLOAT.fullmatch(value):
        return None
    return f"{key}={value}: not a {annotation} value"


def override_problem(surface: dict[str, Any], override: str) -> str | None:
    """Return why one ``section.field=value`` override would be rejected (None: accepted)."""
    if "=" not in override:
        return f"{override}: expected key=value"
    key, value = override.split("=", 1)
    if key == "dataset.dataset_name":  # consumed by --dataset llm-finetune (dataset_utils.apply_dataset_override)
        presets = surface["llm_finetune_presets"]
        return None if value in presets else f"{override}: unknown finetune preset (use one of {presets})"
    section, _, name = key.partition(".")
    sections = surface["sections"]
    if section not in sections:
        return f"{key}: ConfigContainer has no section '{section}'"
    fields = sections[section]["fields"]
    field = name.split(".", 1)[0]
    if field not in fields:
        return f"{key}: {sections[section]['class'].rsplit('.', 1)[-1]} has no field '{field}'"
    return _value_problem(key, fields[field], value) if "." not in name else None


def _options(words: list[str], options: dict[str, Any]) -> tuple[dict[str, str | None], list[str], list[str]]:
    """Split launcher words into (options given, override words, problems)."""
    given: dict[str, str | None] = {}
    rest: list[str] = []
    problems: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        if word.startswith("-"):
            flag, _, inline = word.partition("=")
            spec = options.get(flag)
            if spec is None:
                problems.append(f"{flag}: not an option of this launcher (known: {', '.join(sorted(options))})")
            elif spec["takes_value"]:
                if not inline and i + 1 >= len(words):
                    problems.append(f"{flag}: needs a value")
                given[flag] = inline or (words[i + 1] if i + 1 < len(words) else None)
                i += 0 if inline else 1
            else:
                given[flag] = None
        else:
            rest.append(word)
        i += 1
    return given, rest, problems


def argv_problems(argv: list[str], surface: dict[str, Any]) -> list[str]:
    """Return every reason the real ``run_recipe.py`` of ``surface`` would reject ``argv``."""
    script = surface["run_recipe"]["path"]
    at = next((i for i, w in enumerate(argv) if w.endswith(script)), None)
    if at is None:
        return [f"no {script} in the command"]
    given, overrides, problems = _options(argv[at + 1:], surface["run_recipe"]["options"])
    recipe = given.get("--recipe")
    if recipe is None:
        problems.append("--recipe: required")
    elif (why := recipe_problem(surface, recipe)) is not None:
        problems.append(f"--recipe {recipe}: {why}")
    if "--dataset" in given and given["--dataset"] not in surface["dataset_types"]:
        problems.append(f"--dataset {given['--dataset']}: use one of {surface['dataset_types']}")
    if "--seq_length" in given and not _INT.fullmatch(str(given["--seq_length"])):
        problems.append(f"--seq_length {given['--seq_length']}: not an integer")
    problems += [p for o in overrides if (p := override_problem(surface, o))]
    if recipe and "_peft_" not in f"_{recipe}_" and any(o.startswith("peft.") for o in overrides):
        problems.append(f"peft.* overrides with {recipe}: full-SFT recipes have peft=None (use a *_peft_config)")
    return problems


def import_problems(argv: list[str], surface: dict[str, Any]) -> list[str]:
    """Return every reason ``convert_checkpoints.py import`` of ``surface`` would reject ``argv``."""
    spec = surface["convert_checkpoints"]
    at = next((i for i, w in enumerate(argv) if w.endswith(spec["path"])), None)
    if at is None or argv[at + 1: at + 2] != ["import"]:
        return [f"no `{spec['path']} import` in the command"]
    given, rest, problems = _options(argv[at + 2:], spec["import_options"])
    problems += [f"{w}: unexpected argument" for w in rest]
    problems += [f"{flag}: required" for flag, o in spec["import_options"].items()
                 if o.get("required") and flag not in given]
    return problems
