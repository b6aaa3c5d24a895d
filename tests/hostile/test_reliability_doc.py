"""RELIABILITY.md's "Hostile input" table states the corpus as it is (counts per class)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from tests.hostile.test_corpus import CORPUS

DOC = Path(__file__).resolve().parents[2] / "RELIABILITY.md"


def _hostile_rows() -> dict[str, tuple[int, int, int]]:
    section = DOC.read_text().split("## Hostile input", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip().strip("*") for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[1].isdigit():
            rows[cells[0].split(":")[0].lower()] = (int(cells[1]), int(cells[2]), int(cells[3]))
    return rows


def test_table_matches_the_corpus() -> None:
    rows = _hostile_rows()
    counts = Counter((c.klass.lower(), c.expect) for c in CORPUS)
    for klass in {c.klass.lower() for c in CORPUS}:
        reject, accept = counts[(klass, "reject")], counts[(klass, "accept")]
        assert rows.pop(klass) == (reject + accept, reject, accept), klass
    total_reject = sum(1 for c in CORPUS if c.expect == "reject")
    assert rows == {"all": (len(CORPUS), total_reject, len(CORPUS) - total_reject)}
