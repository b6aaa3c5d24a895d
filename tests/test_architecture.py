"""Imports point down: the pure domain never touches Prefect, SQLAlchemy or subprocesses."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "scaling_matrix"
PURE = ["config", "matrix.py", "render", "parsing", "analysis.py", "report.py", "outcome.py",
        "records.py", "cells.py", "slurm", "metrics.py", "recipes.py", "memory_model.py",
        "memory_terms.py", "memory_published.py", "squad.py",
        "feasibility.py", "history.py", "cell_rules.py", "safe_text.py", "versions.py",
        "bridge_surface.py", "gpus.py", "flops.py", "efficiency.py", "yardstick.py", "workload.py",
        "layout.py", "planning.py", "backends/base.py"]
FORBIDDEN = ("prefect", "sqlalchemy", "subprocess", "flows", "tasks", "blocks", "deployments")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def _pure_files() -> list[Path]:
    files: list[Path] = []
    for entry in PURE:
        p = PKG / entry
        files += sorted(p.rglob("*.py")) if p.is_dir() else [p] if p.exists() else []
    return files


@pytest.mark.parametrize("path", _pure_files(), ids=lambda p: str(p.relative_to(PKG)))
def test_pure_module_has_no_io_imports(path: Path) -> None:
    bad = {n for n in _imports(path) if n.split(".")[0] in FORBIDDEN
           or n.startswith("scaling_matrix.adapters")}
    assert not bad, f"{path.name} imports {bad}"


def test_modules_stay_small() -> None:
    root = PKG.parent
    too_big = [str(p.relative_to(root)) for d in ("scaling_matrix", "flows", "tasks", "blocks", "deployments")
               for p in (root / d).rglob("*.py") if len(p.read_text().splitlines()) > 330]
    assert not too_big, f"modules over ~300 lines: {too_big}"
