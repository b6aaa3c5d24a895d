#!/usr/bin/env python3
"""Regenerate the pinned Megatron-Bridge launch surface from a source checkout (no import, no GPU).

Megatron-Bridge cannot be installed on this project's Python 3.11 CPU machines (0.4.0-0.6.2 need
Python >=3.12,<3.13; 0.3.x hard-requires ``transformer-engine[core_cu13]``, ``mamba-ssm`` and
``causal-conv1d``), so ``scaling-matrix`` checks what it renders against a *pinned copy* of the names
the real launcher reads, extracted here from the source with :mod:`ast`:

* ``scripts/training/run_recipe.py``: its argparse options (and ``choices``);
* the recipe function names ``megatron.bridge.recipes`` exports (what ``run_recipe.py --recipe`` accepts)
  and each recipe's parameters;
* ``recipes/utils/dataset_utils.py``: ``DATASET_TYPES`` and ``LLM_FINETUNE_PRESETS``;
* every ``ConfigContainer`` section and the dataclass fields (with inherited Megatron-Core / Megatron
  training fields, from the ``3rdparty/Megatron-LM`` submodule) that Hydra-style ``section.field=value``
  overrides may set (OmegaConf struct mode rejects any other key);
* ``examples/conversion/convert_checkpoints.py``: the ``import`` sub-command's options.

Usage (from a checkout with its submodule, e.g. ``git clone --recurse-submodules -b v0.5.0 …``)::

    python scripts/megatron_bridge_fields.py --bridge /path/to/Megatron-Bridge \\
        --tag v0.5.0 --commit fcbb6031103d0ca845c1a54d4fee55ecfcca17b6 \\
        --out scaling_matrix/data/megatron_bridge-0.5.0.json
"""

from __future__ import annotations

import argparse
import ast
import json
import subprocess
import sys
from pathlib import Path

#: ConfigContainer sections whose annotation is a union: the class the workshop recipes put there
#: (llama*_peft/sft_config: AutoBridge → GPTModelProvider; --dataset llm-finetune with the SQuAD preset
#: → finetune_utils.default_squad_config → HFDatasetConfig; _peft_common → LoRA).
SECTION_CLASSES = {
    "model": ("megatron.bridge.models.gpt_provider", "GPTModelProvider"),
    "dataset": ("megatron.bridge.data.builders.hf_dataset", "HFDatasetConfig"),
    "peft": ("megatron.bridge.peft.lora", "LoRA"),
}
SKIP_SECTIONS = {"env_vars", "optimizer_config_override_provider", "mixed_precision"}


class Source:
    """Python modules of a Megatron-Bridge checkout and its Megatron-LM submodule, read as ASTs."""

    def __init__(self, roots: list[Path]) -> None:
        self.roots = roots
        self._cache: dict[str, ast.Module | None] = {}

    def path(self, module: str) -> Path | None:
        rel = Path(*module.split("."))
        for root in self.roots:
            for cand in (root / f"{rel}.py", root / rel / "__init__.py"):
                if cand.is_file():
                    return cand
        return None

    def tree(self, module: str) -> ast.Module | None:
        if module not in self._cache:
            p = self.path(module)
            self._cache[module] = ast.parse(p.read_text(encoding="utf-8")) if p else None
        return self._cache[module]

    def resolve(self, module: str, name: str, depth: int = 0) -> tuple[str, ast.AST] | None:
        """Return (module, definition) of ``name`` as seen from ``module`` (follows imports)."""
        tree = self.tree(module)
        if tree is None or depth > 12:
            return None
        for node in tree.body:
            if isinstance(node, (ast.ClassDef, ast.FunctionDef)) and node.name == name:
                return module, node
        for node in tree.body:
            if isinstance(node, ast.ImportFrom):
                base = absolute(module, node, self.path(module))
                for alias in node.names:
                    if alias.name == "*" or (alias.asname or alias.name) == name:
                        hit = self.resolve(base, name if alias.name == "*" else alias.name, depth + 1)
                        if hit:
                            return hit
        return None


def absolute(module: str, node: ast.ImportFrom, path: Path | None) -> str:
    """Return the absolute module name of a (possibly relative) ``from … import``."""
    if not node.level:
        return node.module or ""
    package = module.split(".")
    if path is None or path.name != "__init__.py":
        package = package[:-1]
    package = package[: len(package) - (node.level - 1)]
    return ".".join(package + ([node.module] if node.module else []))


def class_fields(src: Source, module: str, cls: ast.ClassDef, seen: set[str] | None = None) -> dict[str, str]:
    """Return ``{field: annotation}`` of a dataclass and its bases (base fields first, then overrides)."""
    seen = seen if seen is not None else set()
    out: dict[str, str] = {}
    for base in cls.bases:
        target = base.value if isinstance(base, ast.Subscript) else base
        name = ast.unparse(target).split(".")[-1]
        hit = src.resolve(module, name)
        if hit and isinstance(hit[1], ast.ClassDef) and f"{hit[0]}.{name}" not in seen:
            seen.add(f"{hit[0]}.{name}")
            out.update(class_fields(src, hit[0], hit[1], seen))
    for node in cls.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            ann = ast.unparse(node.annotation)
            if ann.startswith(("ClassVar", "typing.ClassVar")) or node.target.id.startswith("_"):
                continue
            if node.value is not None and "init=False" in ast.unparse(node.value).replace(" ", ""):
                continue
            out[node.target.id] = ann
    return out


def sections(src: Source) -> dict[str, dict[str, object]]:
    """Return every ConfigContainer section with its class and fields."""
    module, container = src.resolve("megatron.bridge.training.config", "ConfigContainer")
    out: dict[str, dict[str, object]] = {}
    for node in container.body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        section = node.target.id
        if section.startswith("_") or section in SKIP_SECTIONS:
            continue
        if section in SECTION_CLASSES:
            mod, name = SECTION_CLASSES[section]
        else:
            ann = ast.unparse(node.annotation).replace("Optional[", "").rstrip("]").split("|")[0].strip()
            mod, name = module, ann
        hit = src.resolve(mod, name)
        if not hit or not isinstance(hit[1], ast.ClassDef):
            print(f"warning: section {section}: class {name} not found", file=sys.stderr)
            continue
        out[section] = {"class": f"{hit[0]}.{name}", "fields": class_fields(src, hit[0], hit[1])}
    return out


def literal_strings(src: Source, module: str, name: str) -> list[str]:
    """Return the string elements (or keys) of a module-level list/dict constant ``name``."""
    for node in src.tree(module).body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        if any(isinstance(t, ast.Name) and t.id == name for t in targets) and node.value is not None:
            elts = node.value.keys if isinstance(node.value, ast.Dict) else getattr(node.value, "elts", [])
            return [e.value for e in elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
    return []


def argparse_options(path: Path, parser_name: str | None = None) -> dict[str, dict[str, object]]:
    """Return the options of every ``add_argument`` call in ``path`` (of sub-parser ``parser_name`` if given)."""
    out: dict[str, dict[str, object]] = {}
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not (isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "add_argument"):
            continue
        owner = ast.unparse(node.func.value)
        if parser_name is not None and owner != parser_name:
            continue
        flags = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
        kw = {k.arg: k.value for k in node.keywords}
        spec: dict[str, object] = {"takes_value": ast.unparse(kw["action"]) not in ("'store_true'", "'store_false'")
                                   if "action" in kw else True}
        if "choices" in kw:
            spec["choices"] = ast.unparse(kw["choices"])
        if "required" in kw:
            spec["required"] = ast.unparse(kw["required"]) == "True"
        for flag in flags:
            out[flag] = spec
    return out


def recipes(src: Source) -> dict[str, list[str]]:
    """Return ``{recipe name: parameter names}`` of every ``*_config`` ``megatron.bridge.recipes`` exports."""
    out: dict[str, list[str]] = {}
    for node in src.tree("megatron.bridge.recipes").body:
        if not (isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names)):
            continue
        family = absolute("megatron.bridge.recipes", node, src.path("megatron.bridge.recipes"))
        names = literal_strings(src, family, "__all__")
        for name in names:
            hit = src.resolve(family, name)
            if name.endswith("_config") and hit and isinstance(hit[1], ast.FunctionDef):
                args = hit[1].args
                out[name] = [a.arg for a in args.posonlyargs + args.args + args.kwonlyargs]
    return dict(sorted(out.items()))


def git_commit(path: Path) -> str | None:
    res = subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True)
    return res.stdout.strip() if res.returncode == 0 else None


def build(bridge: Path, mlm: Path, tag: str, commit: str | None, mlm_commit: str | None) -> dict[str, object]:
    """Return the pinned document for a Megatron-Bridge checkout."""
    src = Source([bridge / "src", mlm])
    run_recipe = bridge / "scripts/training/run_recipe.py"
    convert = bridge / "examples/conversion/convert_checkpoints.py"
    dsu = "megatron.bridge.recipes.utils.dataset_utils"
    return {
        "schema": "scaling-matrix/megatron-bridge-surface/1",
        "library": "megatron-bridge",
        "version": tag.lstrip("v"),
        "tag": tag,
        "commit": commit or git_commit(bridge),
        "megatron_lm_commit": mlm_commit or git_commit(mlm),
        "source": "https://github.com/NVIDIA-NeMo/Megatron-Bridge",
        "generated_by": "scripts/megatron_bridge_fields.py (ast; nothing imported)",
        "run_recipe": {"path": "scripts/training/run_recipe.py", "options": argparse_options(run_recipe, "parser")},
        "dataset_types": literal_strings(src, dsu, "DATASET_TYPES"),
        "llm_finetune_presets": literal_strings(src, dsu, "LLM_FINETUNE_PRESETS"),
        "convert_checkpoints": {"path": "examples/conversion/convert_checkpoints.py",
                                "import_options": argparse_options(convert, "import_parser")},
        "recipes": recipes(src),
        "sections": sections(src),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bridge", type=Path, required=True, help="Megatron-Bridge checkout (with src/, scripts/)")
    ap.add_argument("--megatron-lm", type=Path, help="Megatron-LM checkout (default: <bridge>/3rdparty/Megatron-LM)")
    ap.add_argument("--tag", required=True, help="release tag of the checkout, e.g. v0.5.0")
    ap.add_argument("--commit", help="commit of the checkout (default: git rev-parse HEAD)")
    ap.add_argument("--megatron-lm-commit", help="commit of the Megatron-LM submodule (default: git rev-parse HEAD)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    mlm = args.megatron_lm or args.bridge / "3rdparty" / "Megatron-LM"
    doc = build(args.bridge, mlm, args.tag, args.commit, args.megatron_lm_commit)
    args.out.write_text(json.dumps(doc, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    print(f"{args.out}: {len(doc['recipes'])} recipes, {len(doc['sections'])} sections")
    return 0


if __name__ == "__main__":
    sys.exit(main())
