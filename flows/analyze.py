"""``analyze``: a run's stored cells -> scaling tables, plots, regression alerts -> Prefect artifacts.

Artifacts: ``scaling-<matrix>-...`` tables and ``summary-<matrix>`` (as before), ``plots-<matrix>``
(PNG plots embedded as data URIs; the files are under ``$SCALING_HOME/runs/<run-id>/report/``)
and, only when the detector fires, ``regressions-<matrix>`` with what changed per alert.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from pydantic import SecretStr

from blocks.results_db import resolve_results_url
from scaling_matrix.adapters.store import ResultsStore
from scaling_matrix.history import DEFAULT_METRICS, Alert, detect_regressions, with_scaling
from scaling_matrix.paths import run_dir
from scaling_matrix.report import report_rows
from tasks.artifacts import ArtifactPayload, publish_artifacts, publish_plots, publish_regressions
from tasks.result_file import write_result_document

#: Nights of history loaded per cell (detector window plus room for the trend plot).
HISTORY_NIGHTS = 60


@dataclass
class Analysis:
    """What ``analyze`` found: report rows, regression alerts, artifact keys and payloads, plot files and
    the result document (``runs/<run-id>/report/result.json``)."""

    run_id: str
    rows: list[dict[str, Any]]
    alerts: list[Alert] = field(default_factory=list)
    artifacts: list[str] = field(default_factory=list)
    plots: list[Path] = field(default_factory=list)
    regressions_key: str = ""
    payloads: list[ArtifactPayload] = field(default_factory=list)
    result_file: Path | None = None


@task(name="load-history", cache_policy=NO_CACHE)
def load_history(store: ResultsStore, run_id: str, cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return the completed history of ``cells``' series up to ``run_id`` (scaling columns added)."""
    run = store.run(run_id)
    if run is None or not cells:
        return []
    ids = sorted({c["cell_id"] for c in cells})
    rows = store.history(ids, cluster=run["cluster"], until=run["created_at"],
                         limit=HISTORY_NIGHTS * len(ids))
    return with_scaling(rows)


@task(name="detect-regressions", cache_policy=NO_CACHE)
def find_regressions(history: list[dict[str, Any]], run_id: str, metrics: list[str]) -> list[Alert]:
    """Return the regression alerts of ``run_id`` against its history."""
    return detect_regressions(history, run_id, metrics)


@flow(name="analyze")
def analyze(run_id: str, matrix: str, store_url: SecretStr | None = None,
            metrics: list[str] | None = None) -> Analysis:
    """Return the analysis of ``run_id`` after publishing its tables, plots and any regressions.

    Args:
        run_id: the stored run.
        matrix: matrix name (artifact keys).
        store_url: results DB (default: ``resolve_results_url()``); a ``SecretStr`` because flow
            parameters are shown in the Prefect UI and a PostgreSQL URL carries a password.
        metrics: metrics the detector watches (default ``history.DEFAULT_METRICS``).
    """
    store = ResultsStore(store_url.get_secret_value() if store_url else resolve_results_url())
    cells = store.cells(run_id)
    payloads = publish_artifacts(run_id, matrix, cells)
    rows = report_rows(cells)
    history = load_history(store, run_id, cells)
    alerts = find_regressions(history, run_id, list(metrics or DEFAULT_METRICS))
    from scaling_matrix.plots import plots_markdown, render_plots  # matplotlib: only once there is a run to plot

    plots = render_plots(rows, history, alerts, run_dir(run_id) / "report")
    payloads.append(publish_plots(run_id, matrix, plots_markdown(plots, run_id, matrix)))
    result = Analysis(run_id, rows, alerts, [], [p.path for p in plots if p.path], payloads=payloads,
                      result_file=write_result_document(run_id, store))
    if alerts:
        payloads.append(publish_regressions(run_id, matrix, alerts))
        result.regressions_key = payloads[-1].key
        logger = get_run_logger()
        for alert in alerts:
            logger.warning("regression: %s", alert.summary())
    result.artifacts = [p.key for p in payloads]
    return result


__all__ = ["Analysis", "HISTORY_NIGHTS", "analyze", "find_regressions", "load_history"]
