"""nvidia-smi CSV variants, module purity and size for the parsing layer and metrics."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from scaling_matrix.parsing.memory import parse_memory_rows, summarize
from tests.parsing.conftest import FIX

PKG = Path(__file__).resolve().parents[2] / "scaling_matrix"
PURE = sorted((PKG / "parsing").glob("*.py")) + [PKG / "metrics.py"]


def test_readme_query_with_units_and_utilization_column() -> None:
    log = parse_memory_rows((FIX / "gpu_memory_readme_query.csv").read_text().splitlines())
    s = summarize(log)[0]
    assert (s.peak_mib, s.mode_mib, s.samples, s.total_mib) == (40000, 40000, 3, 81920)
    assert s.avg_mib == pytest.approx((1 + 40000 + 40000) / 3) and log.problems == []


def test_scripts_query_without_units() -> None:
    s = summarize(parse_memory_rows((FIX / "gpu_memory_log.csv").read_text().splitlines()))
    assert (s[0].peak_mib, s[1].peak_mib) == (16273, 17000)


@pytest.mark.parametrize("path", PURE, ids=lambda p: p.name)
def test_pure_and_small(path: Path) -> None:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    assert not {n for n in names if n.split(".")[0] in ("prefect", "sqlalchemy", "subprocess")}
    assert len(path.read_text().splitlines()) <= 300
