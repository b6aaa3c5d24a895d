"""Write a run's versioned result document next to its artifacts (``runs/<run-id>/report/result.json``)."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from scaling_matrix.adapters.store import ResultsStore
from scaling_matrix.paths import run_dir
from scaling_matrix.result_doc import render_document, result_document


@task(name="write-result-document", cache_policy=NO_CACHE)
def write_result_document(run_id: str, store: ResultsStore) -> Path:
    """Write the result document of ``run_id`` (schema ``result-schema-1.json``) and return its path."""
    doc = result_document(store.run(run_id) or {"run_id": run_id}, store.cells(run_id))
    path = run_dir(run_id) / "report" / "result.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(render_document(doc) + "\n", encoding="utf-8")
    tmp.replace(path)  # readers never see a half-written file
    return path
