"""``analyze``: stored cell results of a run -> scaling tables -> Prefect artifacts."""

from __future__ import annotations

from typing import Any

from prefect import flow

from scaling_matrix.adapters.store import ResultsStore
from scaling_matrix.paths import results_url
from scaling_matrix.report import report_rows
from tasks.artifacts import publish_artifacts


@flow(name="analyze")
def analyze(run_id: str, matrix: str) -> list[dict[str, Any]]:
    """Return the report rows of ``run_id`` after publishing its tables and summary."""
    cells = ResultsStore(results_url()).cells(run_id)
    publish_artifacts(run_id, matrix, cells)
    return report_rows(cells)
