"""``scaling-matrix``: plan -> (preflight) -> import -> fine-tune every cell -> analyze. Sequencing only:
what to run and how a run ended are pure functions (``planning``); running is ``execution``."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run
from prefect.states import Cancelled, State
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import SecretStr

from blocks.cluster import resolve_profile
from blocks.results_db import resolve_results_url
from flows.analyze import analyze
from flows.cancel_watch import watch_for_cancel
from flows.hooks import on_cancelled, on_crashed
from scaling_matrix.adapters.store import ResultsStore
from scaling_matrix.config.loading import load_matrix
from scaling_matrix.execution import open_core
from scaling_matrix.imports import check_import_targets
from scaling_matrix.paths import run_dir
from scaling_matrix.planning import plan_run, select_todo, summarize_run
from scaling_matrix.run_control import stop_cancelled_run
from scaling_matrix.runs import new_run_id, write_rendered
from scaling_matrix.stop import stop_on_signals, token_for_run
from tasks.artifacts import attach_artifacts, publish_rendered
from tasks.finetune import run_cells
from tasks.imports import import_all
from scaling_matrix.preflight import wants_preflight
from tasks.preflight import check_preflight
from tasks.results import finish_run, record_not_run, record_run

__all__ = ["on_cancelled", "on_crashed", "scaling_matrix"]


@flow(name="scaling-matrix", task_runner=ThreadPoolTaskRunner(), on_cancellation=[on_cancelled],
      on_crashed=[on_crashed])
def scaling_matrix(matrix: str = "smoke", profile: str = "local", run_id: str | None = None,
                   dry_run: bool = False, variant: str | None = None, force: bool = False,
                   repeats: int | None = None, preflight: bool | None = None) -> dict[str, Any] | State:
    """Run every cell of ``matrix`` on ``profile``; return the run id and per-status counts.

    Args:
        matrix: preset name (smoke, workshop, ...) or path to a matrix YAML file.
        profile: preset name (local, ...), path to a profile YAML file, or ``block:NAME`` (a SlurmCluster).
        run_id: resume this run (completed cells are kept) instead of starting a new one.
        dry_run: render every job into the run folder and publish them; launch nothing.
        variant: 'faithful' or 'corrected' (apply cells' upstream-bug corrections); None: the file's.
        force: also run cells whose predicted memory exceeds the device (else stored as skipped).
        repeats: run every cell this many times (None: the matrix file's ``repeats``).
        preflight: ``sbatch --test-only`` every job before submitting any (None: the profile's setting).
    """
    run = plan_run(load_matrix(matrix, variant=variant, repeats=repeats), resolve_profile(profile),
                   run_id or new_run_id())  # ConfigError before anything is written or launched
    if dry_run:
        publish_rendered(index := write_rendered(run, run_dir(run.run_id)))
        return {"run_id": run.run_id, "dry_run": True, "cells": len(index["cells"])}
    if wants_preflight(run.profile, preflight):
        check_preflight(run)  # PreflightRejected, per cell in SLURM's words: nothing submitted or stored
    check_import_targets(run.cells, run.profile)  # never import over somebody else's folder
    store, token, flow_run_id = ResultsStore(resolve_results_url()), token_for_run(), str(flow_run.id or "")
    record_run(run, store, flow_run_id)
    with stop_on_signals(token), watch_for_cancel(flow_run_id, token), open_core(run.profile, store, token) as core:
        imported = import_all(run.cells, run.profile, run.imports, core)
        todo = select_todo(run.plans, store.cell_states(run.run_id), imported, run.profile, force, token.is_set())
        record_not_run(todo, store)
        run_cells(todo.launch, core, run.profile)
    if token.is_set():  # Ctrl-C/SIGTERM, a runner's kill or a cancel seen through the API
        get_run_logger().warning(message := stop_cancelled_run(store, run.run_id, flow_run_id))
        return Cancelled(message=message)
    analysis = analyze(run.run_id, run.matrix.name, SecretStr(store.url))  # masked in the UI
    attach_artifacts(analysis.payloads)  # on this flow run too: the run a user opens
    summary = summarize_run(run.run_id, len(run.plans), store.cell_states(run.run_id), analysis.alerts,
                            analysis.regressions_key)
    finish_run(summary, store, flow_run_id)
    if error := summary.error():
        raise error
    return summary.as_dict()
