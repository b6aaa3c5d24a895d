"""Publish scaling tables, the run summary, plots and regressions as Prefect artifacts.

Each artifact is built once as an :class:`ArtifactPayload`; the ``analyze`` flow publishes them
(its own copy) and the ``scaling-matrix`` flow attaches the same payloads to its own flow run,
the run a user opens after ``deployment run``, a schedule or ``scaling-matrix run``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from scaling_matrix.analysis import scaling_tables
from scaling_matrix.efficiency import yardstick_rows, yardstick_table
from scaling_matrix.history import Alert, render_alerts_markdown
from scaling_matrix.paths import run_dir
from scaling_matrix.planning import RunPlan
from scaling_matrix.report import render_markdown, table_title
from scaling_matrix.runs import write_rendered


@dataclass(frozen=True)
class ArtifactPayload:
    """One artifact: ``kind`` 'table' (data: list of row dicts) or 'markdown' (data: str)."""

    kind: str
    key: str
    data: Any
    description: str


def artifact_key(*parts: str) -> str:
    """Return a Prefect artifact key (``^[a-z0-9-]*$``) built from ``parts``."""
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9]+", "-", "-".join(parts).lower())).strip("-")


def create_artifact(payload: ArtifactPayload) -> None:
    """Create ``payload`` in the current Prefect run context (task run, else flow run)."""
    if payload.kind == "table":
        create_table_artifact(payload.data, key=payload.key, description=payload.description)
    else:
        create_markdown_artifact(payload.data, key=payload.key, description=payload.description)


def attach_artifacts(payloads: list[ArtifactPayload]) -> list[str]:
    """Create every payload on the calling flow run (call from a flow body); return the keys."""
    for payload in payloads:
        create_artifact(payload)
    return [p.key for p in payloads]


def table_payloads(run_id: str, matrix: str, cells: list[dict[str, Any]]) -> list[ArtifactPayload]:
    """Return one table per (model, track, workload, device) and the markdown summary of a run."""
    out = []
    for (model, track, workload, device), table in scaling_tables(cells).items():
        records = table.astype(object).where(table.notna(), None).to_dict("records")
        out.append(ArtifactPayload("table", artifact_key("scaling", matrix, model, track, workload, device),
                                   records, f"{table_title((model, track, workload, device))}, run {run_id}"))
    done = [c for c in cells if c.get("status") == "completed"]
    if done:  # each completed cell next to its published reference (or why there is none)
        out.append(ArtifactPayload("table", artifact_key("yardstick", matrix), yardstick_table(yardstick_rows(done)),
                                   f"Published yardstick (tokens/s/GPU, ours vs NVIDIA), run {run_id}"))
    out.append(ArtifactPayload("markdown", artifact_key("summary", matrix), render_markdown(cells, run_id),
                               f"Scaling summary of run {run_id}"))
    return out


@task(name="publish-artifacts", cache_policy=NO_CACHE)
def publish_artifacts(run_id: str, matrix: str, cells: list[dict[str, Any]]) -> list[ArtifactPayload]:
    """Publish one table artifact per (model, track) and one markdown summary; return them."""
    payloads = table_payloads(run_id, matrix, cells)
    for payload in payloads:
        create_artifact(payload)
    return payloads


@task(name="publish-plots", cache_policy=NO_CACHE)
def publish_plots(run_id: str, matrix: str, markdown: str) -> ArtifactPayload:
    """Publish the plots markdown (PNG data URIs) of a run as ``plots-<matrix>``; return it."""
    payload = ArtifactPayload("markdown", artifact_key("plots", matrix), markdown,
                              f"Speedup, memory and step-time trend plots of run {run_id}")
    create_artifact(payload)
    return payload


@task(name="publish-regressions", cache_policy=NO_CACHE)
def publish_regressions(run_id: str, matrix: str, alerts: list[Alert]) -> ArtifactPayload:
    """Publish the regressions of a run with what changed as ``regressions-<matrix>``; return it."""
    payload = ArtifactPayload("markdown", artifact_key("regressions", matrix),
                              render_alerts_markdown(alerts, run_id, matrix),
                              f"{len(alerts)} regression(s) in run {run_id}")
    create_artifact(payload)
    return payload


def rendered_markdown(index: dict[str, Any]) -> str:
    """Return a markdown page of everything a run would submit: per cell its command and batch script."""
    lines = [f"# Rendered jobs of run {index['run_id']} ({index['matrix']} on {index['profile']}, "
             f"launcher {index['launcher']})", "", f"{len(index['cells'])} cells, {len(index['imports'])} imports; "
             "files are in each job's folder.", ""]
    for title, jobs in (("Imports", index["imports"]), ("Cells", index["cells"])):
        lines += [f"## {title}", ""]
        for name, job in jobs.items():
            lines += [f"### `{name}`", "", f"folder `{job['folder']}`, {job['nodes']} node(s) x "
                      f"{job['ranks_per_node']} rank(s)", "", "```bash", job["command"], "```", ""]
            if "script" in job:
                with open(job["script"], encoding="utf-8") as fh:
                    lines += [f"`{job['script']}`:", "", "```bash", fh.read().rstrip("\n"), "```", ""]
    return "\n".join(lines)


@task(name="dry-run", cache_policy=NO_CACHE)
def publish_dry_run(run: RunPlan) -> dict[str, Any]:
    """Write every job of ``run`` into its run folder, publish them as ``rendered-<matrix>``, and
    return the flow's dry-run answer (run id, cell count); nothing is stored or launched."""
    index = write_rendered(run, run_dir(run.run_id))
    payload = ArtifactPayload("markdown", artifact_key("rendered", index["matrix"]), rendered_markdown(index),
                              f"Every batch script and command of run {index['run_id']} (dry run)")
    create_artifact(payload)
    return {"run_id": run.run_id, "dry_run": True, "cells": len(index["cells"])}
