"""Print the memory predictor against every comparable published GPU measurement (markdown, for BENCHMARKS.md).

Usage::

    .venv/bin/python benchmarks/memory_published.py

Rows: shared/reference/memory-measurements.md §1; configurations and reasons in
``scaling_matrix/memory_published.py``; the test ``tests/core/test_memory_published.py`` holds the goal.
Also prints the workshop cells' predictions (nothing published to compare them with).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scaling_matrix.config.loading import load_matrix, load_profile  # noqa: E402
from scaling_matrix.feasibility import assess  # noqa: E402
from scaling_matrix.matrix import plan_cells  # noqa: E402
from scaling_matrix.memory_published import GOAL, NOT_COMPARABLE, PUBLISHED, table  # noqa: E402


def main() -> None:
    """Print the tables."""
    print(table())
    errors = [abs(p.error()) for p in PUBLISHED]
    print(f"\n{sum(e <= GOAL for e in errors)} of {len(errors)} within ±{GOAL:.0%}; "
          f"median |error| {sorted(errors)[len(errors) // 2]:.1%}\n")
    print("| MM row | not compared because |\n|---|---|")
    for row, why in sorted(NOT_COMPARABLE.items(), key=lambda kv: int(kv[0])):
        print(f"| {row} | {why} |")
    ibex = load_profile("ibex")
    print("\n| workshop cell | predicted nvidia-smi GiB (GPU 0) | max_allocated | activations | SQuAD tokens "
          "(quantile) | verdict |\n|---|---|---|---|---|---|")
    for a in assess(plan_cells(load_matrix("workshop"), ibex), ibex):
        p = a.prediction
        print(f"| {a.planned.cell.job_name} | {p.total_gib:.1f} | {p.max_allocated_gib:.1f} | {p.activations_gib:.2f} "
              f"| {p.seq_tokens} (p{100 * p.seq_quantile:.2f}) | {p.verdict} |")


if __name__ == "__main__":
    main()
