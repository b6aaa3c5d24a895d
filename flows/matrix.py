"""``scaling-matrix``: plan -> (preflight) -> import -> fine-tune every cell -> analyze. Sequencing only:
what to run and how a run ended are pure functions (``planning``); running is ``execution``."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.states import Cancelled, State
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import SecretStr

from flows.analyze import analyze
from flows.api_wait import wait_for_api
from flows.hooks import on_cancelled, on_crashed
from flows.session import Session, run_session
from scaling_matrix.planning import RunPlan, select_todo, summarize_run
from scaling_matrix.records import RunStatus
from scaling_matrix.run_control import stop_cancelled_run
from tasks.artifacts import attach_artifacts, publish_dry_run
from tasks.finetune import run_cells
from tasks.imports import import_all
from tasks.plan import plan
from tasks.preflight import clear_to_submit
from tasks.results import finish_run, record_not_run

__all__ = ["on_cancelled", "on_crashed", "scaling_matrix"]


@flow(name="scaling-matrix", task_runner=ThreadPoolTaskRunner(), on_cancellation=[on_cancelled],
      on_crashed=[on_crashed])
def scaling_matrix(matrix: str = "smoke", profile: str = "local", run_id: str | None = None,
                   dry_run: bool = False, variant: str | None = None, force: bool = False,
                   repeats: int | None = None, skip_unsupported: bool = False,
                   preflight: bool | None = None) -> dict[str, Any] | State:
    """Run every cell of ``matrix`` on ``profile``; return the run id and per-status counts.

    Args:
        matrix: preset name (smoke, workshop, ...) or path to a matrix YAML file.
        profile: preset name (local, ...), path to a profile YAML file, or ``block:NAME`` (a SlurmCluster).
        run_id: resume this run (completed cells are kept) instead of starting a new one.
        dry_run: render every job into the run folder and publish them; launch nothing.
        variant: 'faithful' or 'corrected' (apply cells' upstream-bug corrections); None: the file's.
        force: also run cells whose predicted memory exceeds the device (else stored as skipped).
        repeats: run every cell this many times (None: the matrix file's ``repeats``).
        skip_unsupported: leave out the cells the profile's library release cannot run (e.g. Mixtral on
            Megatron-Bridge 0.5) instead of refusing the whole matrix.
        preflight: ``sbatch --test-only`` every job before submitting any (None: the profile's setting).
    """
    run = plan(matrix, profile, run_id, variant, repeats, skip_unsupported)  # ConfigError before anything is written
    if dry_run:
        return publish_dry_run(run)
    clear_to_submit(run, preflight)  # somebody else's import target, a job SLURM refuses: nothing submitted
    with run_session(run) as session:
        imported = import_all(run.cells, run.profile, run.imports, session.core)
        todo = select_todo(run.plans, session.store.cell_states(run.run_id), imported, run.profile, force,
                           session.cancelled)
        record_not_run(todo, session.store)
        run_cells(todo.launch, session.core, run.profile)
    if session.cancelled:  # Ctrl-C/SIGTERM, a runner's kill or a cancel seen through the API
        get_run_logger().warning(message := stop_cancelled_run(session.store, run.run_id, session.flow_run_id))
        return Cancelled(message=message)
    return report_run(run, session)


def report_run(run: RunPlan, session: Session) -> dict[str, Any]:
    """Analyze the finished cells, publish the artifacts and store the run's end; return the summary. Waits
    out a Prefect API that is briefly away (a server restart); if analysis fails all the same, the run is
    stored ``failed`` before the error propagates (never left ``running``)."""
    try:
        wait_for_api()
        analysis = analyze(run.run_id, run.matrix.name, SecretStr(session.store.url))  # masked in the UI
        attach_artifacts(analysis.payloads)  # on this flow run too: the run a user opens
    except Exception:
        session.store.finish_run(run.run_id, RunStatus.FAILED.value, session.flow_run_id)
        raise
    summary = summarize_run(run.run_id, len(run.plans), session.store.cell_states(run.run_id), analysis.alerts,
                            analysis.regressions_key)
    finish_run(summary, session.store, session.flow_run_id)
    if error := summary.error():
        raise error
    return summary.as_dict()
