"""``scaling-matrix``: import -> fine-tune every cell (concurrently, up to capacity) -> analyze.

Every cell ends as a stored row (completed, failed or cancelled); the flow ends Failed when any
cell failed, after storing all results and publishing the artifacts.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from prefect import flow, get_run_logger
from prefect.futures import PrefectFuture
from prefect.runtime import flow_run
from prefect.states import Cancelled, State
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import SecretStr

from flows.analyze import analyze
from flows.cancel_watch import watch_for_cancel
from flows.import_models import import_models
from scaling_matrix.adapters.local import SlotPool
from scaling_matrix.adapters.runner import SubprocessRunner
from scaling_matrix.adapters.slurm import SlurmClient
from scaling_matrix.adapters.slurm_watch import JobWatcher
from scaling_matrix.adapters.store import ResultsStore
from scaling_matrix.cells import CellPlan, plan_cell
from scaling_matrix.config.loading import load_matrix, load_profile
from scaling_matrix.config.models import ProfileSpec
from scaling_matrix.errors import ScalingError
from scaling_matrix.feasibility import assess
from scaling_matrix.execution import (CANCEL_ALL, check_import_targets, current_user, git_revision,
                                      initial_result, new_run_id)
from scaling_matrix.history import RegressionDetected
from scaling_matrix.matrix import plan_cells
from blocks.results_db import resolve_results_url as results_url
from scaling_matrix.paths import run_dir, scaling_home
from scaling_matrix.records import CellResult, RunInfo
from scaling_matrix.run_control import cancel_run, derive_run_status
from scaling_matrix.stop import stop_on_signals
from tasks.finetune import TransientCellFailure, finetune_cell, finetune_cell_slurm
from tasks.artifacts import attach_artifacts
from tasks.results import finish_run, record_cell, record_provenance, record_run


class CellFailures(ScalingError):
    """Raised at the end of a run in which some cells did not complete."""


def _stop_run_of(flow_run_id: str, status: str, reason: str) -> None:
    """Cancel the run(s) whose directory records ``flow_run_id`` (jobs, ranks, cells, run status)."""
    for marker in (scaling_home() / "runs").glob("*/flow_run_id"):
        if marker.read_text().strip() == flow_run_id:
            cancel_run(ResultsStore(results_url()), marker.parent.name, reason, status)


def on_cancelled(flow: Any, flow_run: Any, state: Any) -> None:
    """``on_cancellation`` hook (Prefect calls hooks with the keywords flow, flow_run, state); runs in
    the runner or worker process for deployments, so it stops the run through the store and SLURM."""
    _stop_run_of(str(flow_run.id), "cancelled", f"flow run cancelled ({state.name})")


def on_crashed(flow: Any, flow_run: Any, state: Any) -> None:
    """``on_crashed`` hook: the orchestrator died; stop its jobs and store the run as crashed."""
    _stop_run_of(str(flow_run.id), "crashed", f"flow run crashed: {state.message or state.name}"[:500])


def _collect(futures: list[tuple[CellPlan, PrefectFuture[CellResult]]]) -> list[CellResult]:
    results = []
    for plan, fut in futures:
        fut.wait()
        try:
            results.append(fut.result())
        except TransientCellFailure as exc:
            results.append(exc.result)
        except Exception as exc:  # noqa: BLE001 - stored, never lost
            failed = replace(initial_result(plan, "failed"), failure_class="unknown",
                             reason=f"{type(exc).__name__}: {exc}"[:500],
                             finished_at=datetime.now(UTC))
            record_cell(failed, results_url())
            results.append(failed)
    return results


def _skip_infeasible(todo: list[CellPlan], prof: ProfileSpec, store_url: str, force: bool) -> list[CellPlan]:
    """Store cells predicted not to fit as 'skipped' (unless forced) and return the rest."""
    verdicts = {a.planned.cell.key: a for a in assess([p.planned for p in todo], prof)}
    keep = []
    for p in todo:
        a = verdicts[p.planned.cell.key]
        if a.infeasible and not force:
            record_cell(replace(initial_result(p, "skipped"), failure_class="predicted_oom",
                                reason=a.describe()[:500], finished_at=datetime.now(UTC)), store_url)
        else:
            keep.append(p)
    return keep


def retry_delays(profile: ProfileSpec) -> list[float]:
    """Return exponential back-off delays for the profile's retries (d, 2d, 4d, ...)."""
    return [profile.retry_delay_s * 2**i for i in range(profile.retries)]


def _run_cells(todo: list[CellPlan], prof: ProfileSpec, store_url: str) -> None:
    """Launch every cell concurrently (local: up to capacity; SLURM: the scheduler decides)."""
    opts = {"retries": prof.retries, "retry_delay_seconds": retry_delays(prof)}
    if prof.launcher == "local":
        slots, task = SlotPool(prof.capacity_gpus), finetune_cell.with_options(**opts)
        _collect([(p, task.with_options(task_run_name=f"finetune-{p.planned.cell.slug}")
                   .submit(p, slots, store_url)) for p in todo])
        return
    client = SlurmClient(SubprocessRunner())
    task = finetune_cell_slurm.with_options(**opts)
    with JobWatcher(client.statuses, prof.slurm.poll_interval_s) as watcher:
        _collect([(p, task.with_options(task_run_name=f"finetune-{p.planned.cell.slug}")
                   .submit(p, client, watcher, store_url)) for p in todo])


def _start_run(run_id: str, matrix_name: str, prof: ProfileSpec, plans: list[CellPlan]) -> str:
    """Prepare the run directory, store the run, its pending cells and provenance; return the DB URL."""
    run_dir(run_id).mkdir(parents=True, exist_ok=True)
    (run_dir(run_id) / "flow_run_id").write_text(str(flow_run.id or ""))
    store_url = results_url()
    info = RunInfo(run_id, matrix_name, prof, current_user(), git_revision(), datetime.now(UTC))
    record_run(info, plans, store_url)
    record_provenance(run_id, prof, store_url)
    return store_url


def _cells_to_launch(plans: list[CellPlan], matrix: str, profile: str, prof: ProfileSpec,
                     store_url: str, force: bool, variant: str) -> list[CellPlan]:
    """Import models (of ``matrix`` in ``variant``), then return the cells still to run (not completed,
    imported, predicted to fit)."""
    imported = import_models(matrix, profile, variant)
    if CANCEL_ALL.is_set():
        return []
    run_id = plans[0].run_id if plans else ""
    done = {c["cell_id"] for c in ResultsStore(store_url).cells(run_id) if c["status"] == "completed"}
    todo = [p for p in plans if p.planned.cell.key not in done]
    not_imported = [p for p in todo if imported.get(p.planned.model.name, "").startswith("failed")]
    for p in not_imported:
        record_cell(replace(initial_result(p, "failed"), failure_class="launch_failed",
                            reason=f"model import {imported[p.planned.model.name]}"[:500],
                            finished_at=datetime.now(UTC)), store_url)
    return _skip_infeasible([p for p in todo if p not in not_imported], prof, store_url, force)


def _finish(run_id: str, n_cells: int, analysis: Any, store_url: str) -> dict[str, Any]:
    """Store the run's derived status; raise on failed cells or regressions (Failed state), else
    return a summary."""
    cells = ResultsStore(store_url).cells(run_id)
    finish_run(run_id, derive_run_status(cells), store_url, str(flow_run.id or ""))
    bad = [c for c in cells if c["status"] not in ("completed", "skipped")]
    summary = {"run_id": run_id, "cells": n_cells, "completed": n_cells - len(bad),
               "failed": [f"{c['cell_id']}: {c['failure_class']}" for c in bad],
               "regressions": [a.summary() for a in analysis.alerts]}
    if bad:
        raise CellFailures(f"{len(bad)} of {n_cells} cells did not complete: {summary['failed']}"
                           + (f"; also {len(analysis.alerts)} regression(s)" if analysis.alerts else ""))
    if analysis.alerts:  # Failed state: a Prefect automation on prefect.flow-run.Failed alerts
        raise RegressionDetected(run_id, analysis.alerts, analysis.regressions_key)
    return summary


def _cancelled(run_id: str, store_url: str) -> State:
    """Stop what is left of a cancelled run, store it cancelled and return the Cancelled state."""
    jobs = cancel_run(ResultsStore(store_url), run_id, "cancelled before the cell finished")
    ResultsStore(store_url).finish_run(run_id, "cancelled", str(flow_run.id or ""))
    cells = ResultsStore(store_url).cells(run_id)
    done = sum(c["status"] == "completed" for c in cells)
    get_run_logger().warning("run %s cancelled: %d of %d cells completed%s", run_id, done, len(cells),
                             f"; scancelled {', '.join(jobs)}" if jobs else "")
    return Cancelled(message=f"run {run_id} cancelled: {done} of {len(cells)} cells completed")


@flow(name="scaling-matrix", task_runner=ThreadPoolTaskRunner(max_workers=16),
      on_cancellation=[on_cancelled], on_crashed=[on_crashed])
def scaling_matrix(matrix: str = "smoke", profile: str = "local", run_id: str | None = None,
                   dry_run: bool = False, variant: str | None = None, force: bool = False,
                   repeats: int | None = None, skip_unsupported: bool = False) -> dict[str, Any] | State:
    """Run every cell of ``matrix`` on ``profile``; return the run id and per-status counts.

    Args:
        matrix: preset name (smoke, workshop, ...) or path to a matrix YAML file.
        profile: preset name (local, ...) or path to a profile YAML file.
        run_id: resume this run (completed cells are kept) instead of starting a new one.
        dry_run: validate and render every command, launch nothing.
        variant: 'faithful' or 'corrected' (apply cells' upstream-bug corrections); None: the file's.
        force: also run cells whose predicted memory exceeds the device (else stored as skipped).
        repeats: run every cell this many times (None: the matrix file's ``repeats``).
        skip_unsupported: leave out the cells the profile's library release cannot run (e.g. Mixtral on
            Megatron-Bridge 0.5) instead of refusing the whole matrix.
    """
    logger = get_run_logger()
    mat, prof = load_matrix(matrix, variant=variant, repeats=repeats), load_profile(profile)
    planned = plan_cells(mat, prof, skip_unsupported)  # ConfigError before anything is launched
    run_id = run_id or new_run_id()
    plans = [plan_cell(run_id, pc, prof) for pc in planned]
    if dry_run:
        for plan in plans:
            logger.info("%s: %s", plan.planned.cell.key, plan.command)
        return {"run_id": run_id, "dry_run": True, "cells": len(plans)}
    check_import_targets(planned, prof)  # never import over somebody else's folder
    store_url = _start_run(run_id, mat.name, prof, plans)
    try:
        with stop_on_signals(CANCEL_ALL), watch_for_cancel(str(flow_run.id or ""), CANCEL_ALL):
            todo = _cells_to_launch(plans, matrix, profile, prof, store_url, force, mat.variant)
            _run_cells(todo, prof, store_url)
        if CANCEL_ALL.is_set():  # Ctrl-C/SIGTERM, a runner's kill or a cancel seen through the API
            return _cancelled(run_id, store_url)
    finally:
        CANCEL_ALL.clear()  # a stop request (even one made before the run started) ends with its run
    analysis = analyze(run_id, mat.name, SecretStr(store_url))  # masked in the UI
    attach_artifacts(analysis.payloads)  # on this flow run too: the run a user opens
    return _finish(run_id, len(plans), analysis, store_url)
