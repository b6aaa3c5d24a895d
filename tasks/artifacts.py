"""Publish scaling tables, the run summary, plots and regressions as Prefect artifacts."""

from __future__ import annotations

import re
from typing import Any

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from scaling_matrix.analysis import scaling_tables
from scaling_matrix.history import Alert, render_alerts_markdown
from scaling_matrix.report import render_markdown, table_title


def artifact_key(*parts: str) -> str:
    """Return a Prefect artifact key (``^[a-z0-9-]*$``) built from ``parts``."""
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9]+", "-", "-".join(parts).lower())).strip("-")


@task(name="publish-artifacts", cache_policy=NO_CACHE)
def publish_artifacts(run_id: str, matrix: str, cells: list[dict[str, Any]]) -> list[str]:
    """Publish one table artifact per (model, track) and one markdown summary; return the keys."""
    keys = []
    for (model, track, workload, device), table in scaling_tables(cells).items():
        key = artifact_key("scaling", matrix, model, track, workload, device)
        records = table.astype(object).where(table.notna(), None).to_dict("records")
        create_table_artifact(records, key=key,
                              description=f"{table_title((model, track, workload, device))}, run {run_id}")
        keys.append(key)
    key = artifact_key("summary", matrix)
    create_markdown_artifact(render_markdown(cells, run_id), key=key,
                             description=f"Scaling summary of run {run_id}")
    keys.append(key)
    return keys


@task(name="publish-plots", cache_policy=NO_CACHE)
def publish_plots(run_id: str, matrix: str, markdown: str) -> str:
    """Publish the plots markdown (PNG data URIs) of a run; return its key ``plots-<matrix>``."""
    key = artifact_key("plots", matrix)
    create_markdown_artifact(markdown, key=key,
                             description=f"Speedup, memory and step-time trend plots of run {run_id}")
    return key


@task(name="publish-regressions", cache_policy=NO_CACHE)
def publish_regressions(run_id: str, matrix: str, alerts: list[Alert]) -> str:
    """Publish the regressions of a run with what changed; return its key ``regressions-<matrix>``."""
    key = artifact_key("regressions", matrix)
    create_markdown_artifact(render_alerts_markdown(alerts, run_id, matrix), key=key,
                             description=f"{len(alerts)} regression(s) in run {run_id}")
    return key
