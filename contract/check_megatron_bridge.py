"""Contract checker for Megatron-Bridge commands; runs INSIDE the `megatron_bridge` contract venv.

Input (argv[1], JSON): {"surface": <pinned launch surface, scaling_matrix/data/megatron_bridge-*.json>,
"commands": [{"key": str, "argv": [str, ...], "expect": {override key: exact value}}]}.
Output (stdout, JSON): {"checked": [...], "failures": [{"key", "problem"}]}; exit 1 on any failure.

For each command it does what Megatron-Bridge 0.5.0's scripts/training/run_recipe.py does before any GPU
work, with the real Hydra 1.3.2 / OmegaConf 2.3.0 code:
1. argparse with the launcher's own options (from the pinned surface) and ``parse_known_args``: unknown
   ``--flags`` and non-``key=value`` words are errors (Hydra would reject the latter);
2. ``--dataset llm-finetune`` consumes ``dataset.dataset_name=…`` (``extract_and_remove_override``);
3. the remaining overrides go through ``parse_hydra_overrides`` verbatim (OverridesParser.create()
   .parse_overrides + ConfigLoaderImpl._apply_overrides_to_config on a struct-mode config) — here on a
   *structured* config built from the pinned dataclass field lists (int/float/bool/str/list fields typed,
   the rest Any), so unknown keys and mistyped values fail as they would in the container;
4. each value in ``expect`` must come out of Hydra exactly (quoting of paths with spaces, quotes, ``$``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
from typing import Any, List, Optional

from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import MISSING, OmegaConf  # noqa: F401

SIMPLE = {"int": int, "float": float, "bool": bool, "str": str}


def field_type(annotation: str) -> Any:
    """Return the OmegaConf-checkable type of a pinned annotation (Optional[...] everywhere, else Any)."""
    ann = annotation.replace("typing.", "").replace(" ", "")
    inner = re.sub(r"^Optional\[(.*)\]$", r"\1", ann)
    parts = {p for p in inner.split("|") if p != "None"}
    if len(parts) == 1:
        (only,) = parts
        if only in SIMPLE:
            return Optional[SIMPLE[only]]
        if re.fullmatch(r"(List|list)\[str\]", only):
            return Optional[List[str]]
    return Any


def structured(surface: dict[str, Any]) -> Any:
    """Return a struct-mode OmegaConf config with every pinned section and field."""
    sections = {}
    for name, section in surface["sections"].items():
        fields = [(f, field_type(a), dataclasses.field(default=None)) for f, a in section["fields"].items()]
        cls = dataclasses.make_dataclass(f"S_{name}", fields)
        sections[name] = OmegaConf.structured(cls)
    cfg = OmegaConf.create(sections)
    OmegaConf.set_struct(cfg, True)
    return cfg


def launcher_parser(surface: dict[str, Any]) -> argparse.ArgumentParser:
    """Return an argparse parser with run_recipe.py's options (exit_on_error off)."""
    parser = argparse.ArgumentParser(exit_on_error=False, add_help=False)
    for flag, spec in surface["run_recipe"]["options"].items():
        if spec["takes_value"]:
            choices = surface["dataset_types"] if flag == "--dataset" else None
            parser.add_argument(flag, choices=choices, required=bool(spec.get("required")))
        else:
            parser.add_argument(flag, action="store_true")
    return parser


def check(command: dict[str, Any], surface: dict[str, Any]) -> list[str]:
    """Return the problems of one rendered command (empty: accepted)."""
    argv = command["argv"]
    at = next(i for i, w in enumerate(argv) if w.endswith(surface["run_recipe"]["path"]))
    try:
        args, overrides = launcher_parser(surface).parse_known_args(argv[at + 1:])
    except (argparse.ArgumentError, SystemExit) as exc:
        return [f"run_recipe.py arguments: {exc}"]
    problems = [f"{w}: not key=value" for w in overrides if w.startswith("-") or "=" not in w]
    if args.recipe not in surface["recipes"]:
        problems.append(f"--recipe {args.recipe}: not exported by megatron.bridge.recipes")
    if args.dataset == "llm-finetune":
        preset = [o for o in overrides if o.startswith("dataset.dataset_name=")]
        overrides = [o for o in overrides if o not in preset]
        if preset and preset[0].split("=", 1)[1] not in surface["llm_finetune_presets"]:
            problems.append(f"{preset[0]}: unknown preset")
    cfg = structured(surface)
    try:
        parsed = OverridesParser.create().parse_overrides(overrides=overrides)
        ConfigLoaderImpl._apply_overrides_to_config(overrides=parsed, cfg=cfg)
    except Exception as exc:  # noqa: BLE001 - Hydra/OmegaConf errors are the finding
        cause = f" ({type(exc.__cause__).__name__})" if exc.__cause__ else ""
        return [*problems, f"Hydra/OmegaConf: {type(exc).__name__}{cause}: {str(exc).splitlines()[0]}"]
    for key, want in command.get("expect", {}).items():
        try:
            got = OmegaConf.select(cfg, key)  # resolves interpolations, as to_container(resolve=True) does
        except Exception as exc:  # noqa: BLE001
            got = f"<{type(exc).__name__}>"
        if got != want:
            problems.append(f"{key}: Hydra read {got!r}, rendered for {want!r}")
    return problems


def main() -> int:
    data = json.loads(open(sys.argv[1], encoding="utf-8").read())
    surface = json.loads(open(data["surface"], encoding="utf-8").read())
    report: dict[str, Any] = {"checked": [], "failures": []}
    for command in data["commands"]:
        report["checked"].append(command["key"])
        report["failures"] += [{"key": command["key"], "problem": p} for p in check(command, surface)]
    print(json.dumps(report, indent=1))
    return 1 if report["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
