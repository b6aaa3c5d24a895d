"""Run one attempt of a cell as a SLURM job: render, ledger, sbatch, watch, classify, store.

Crash safety: the attempt is written to the ledger (``attempts`` table) before ``sbatch`` and
updated with the job id right after it. A resumed run re-attaches to a ledger job that is
still queued/running or already finished instead of submitting again; an attempt the ledger left
``submitting`` (killed between the two writes) is found by the job's ``--comment``.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from scaling_matrix.adapters.outputs import read_log_text, read_memory_dir
from scaling_matrix.adapters.runner import SubprocessRunner
from scaling_matrix.adapters.slurm import SlurmClient
from scaling_matrix.adapters.slurm_watch import JobWatcher
from scaling_matrix.adapters.store import ResultsStore
from scaling_matrix.analysis import cell_metrics
from scaling_matrix.cells import CellPlan, effective_seq_length, job_request, label_metrics
from scaling_matrix.config.models import ProfileSpec
from scaling_matrix.errors import LaunchError, ScalingError
from scaling_matrix.execution import checkpoint_complete, initial_result
from scaling_matrix.matrix import PlannedCell
from scaling_matrix.outcome import Outcome, classify_slurm
from scaling_matrix.parsing.memory import summarize
from scaling_matrix.parsing.progress import parse_text
from scaling_matrix.records import CellResult
from scaling_matrix.paths import scaling_home
from scaling_matrix.render.sbatch import JobRequest, render_sbatch
from scaling_matrix.render.shell import CACHE_VARS, cache_env
from scaling_matrix.slurm.status import JobStatus

#: Ledger statuses meaning "a job id exists and may still be collected".
LIVE = ("submitted",)


def attempt_dir(plan: CellPlan, attempt: int) -> Path:
    """Return the directory of one attempt (the cell dir for the first one)."""
    return plan.cell_dir if attempt == 1 else plan.cell_dir / f"attempt-{attempt}"


def write_script(plan: CellPlan, attempt: int) -> Path:
    """Render and write the attempt's batch script; return its path."""
    directory = attempt_dir(plan, attempt)
    directory.mkdir(parents=True, exist_ok=True)
    req = replace(job_request(plan), workdir=str(directory), memory_dir=str(directory / "memory"))
    path = directory / "job.sbatch"
    path.write_text(render_sbatch(req, plan.profile))
    return path


def submission_env(profile: ProfileSpec) -> dict[str, str]:
    """Return the passthrough variables (e.g. HF_TOKEN) sbatch gets from our environment (never written)."""
    return {k: os.environ[k] for k in profile.container.env_passthrough if k in os.environ}


def job_comment(plan: CellPlan, attempt: int) -> str:
    """Return the ``--comment`` that names this attempt's job in the scheduler."""
    return comment_for(plan.run_id, plan.planned.cell.key, attempt)


def comment_for(run_id: str, cell_id: str, attempt: int) -> str:
    """Return the ``--comment`` of attempt ``attempt`` of cell ``cell_id`` (its key) in ``run_id``."""
    slug = re.sub(r"[^a-z0-9]+", "-", cell_id.lower()).strip("-")  # CellSpec.slug of that key
    return f"scaling-matrix:{run_id}:{slug}:{attempt}"


def ledger_job(store: ResultsStore, plan: CellPlan, attempt: int, client: SlurmClient | None = None) -> str | None:
    """Return the job id recorded for this attempt if it may still be collected.

    An attempt left ``submitting`` (the orchestrator died between the ledger write and sbatch's
    answer) is looked up by its comment with ``client``; a job found is recorded and returned.
    """
    key = plan.planned.cell.key
    row = next((r for r in store.attempts(plan.run_id, key) if r["attempt"] == attempt), None)
    if row is not None and row["job_id"] and row["status"] in LIVE:
        return str(row["job_id"])
    if row is None or row["status"] != "submitting" or client is None:
        return None
    job_id = client.find_by_comment(job_comment(plan, attempt))
    if job_id:
        store.record_attempt(plan.run_id, key, attempt, status="submitted", job_id=job_id)
    return job_id


def submit(plan: CellPlan, client: SlurmClient, store: ResultsStore, attempt: int) -> str:
    """Return the job id of a fresh submission, recorded in the ledger around ``sbatch``."""
    key = plan.planned.cell.key
    script = write_script(plan, attempt)
    store.record_attempt(plan.run_id, key, attempt, status="submitting")
    try:
        job_id = client.submit(script, cwd=script.parent, env=submission_env(plan.profile),
                               extra_args=["--no-requeue", f"--comment={job_comment(plan, attempt)}"])
    except ScalingError as exc:
        store.record_attempt(plan.run_id, key, attempt, status="failed", failure_class="launch_failed",
                             reason=str(exc)[:500], finished_at=datetime.now(UTC))
        raise
    store.record_attempt(plan.run_id, key, attempt, status="submitted", job_id=job_id)
    return job_id


def collect(plan: CellPlan, attempt: int, job_id: str, status: JobStatus | None,
            cancelled: bool) -> tuple[Outcome, CellResult]:
    """Return the outcome and result of a finished (or cancelled) job from its files and status."""
    directory = attempt_dir(plan, attempt)
    log_text = read_log_text(directory / f"slurm-{job_id}.out")
    parsed = parse_text(log_text, expected_max_steps=plan.planned.cell.max_steps)
    state = status.state if status else None
    outcome = classify_slurm(state, status.exit_code if status else None, status.signal if status else None,
                             log_text, parsed.reached_last_step, cancelled_by_us=cancelled, parsed=parsed)
    wall = status.elapsed_s if status and status.elapsed_s else None
    cell = plan.planned.cell
    metrics = cell_metrics(parsed, summarize(read_memory_dir(directory / "memory")), wall, gpus=cell.gpus,
                           seq_length=effective_seq_length(plan), global_batch_size=cell.global_batch_size)
    metrics = label_metrics(metrics, plan)  # sequence length, GPU type, precision: for efficiency/yardstick
    klass = outcome.failure_class.value
    cell_status = "completed" if outcome.ok else "cancelled" if klass == "cancelled" else "failed"
    result = replace(initial_result(plan, cell_status), failure_class=klass, reason=outcome.reason,
                     attempts=attempt, exit_code=status.exit_code if status else None, job_id=job_id,
                     started_at=status.start_time if status else None,
                     finished_at=status.end_time if status else datetime.now(UTC),
                     cell_dir=str(directory), metrics=metrics)
    return outcome, result


def run_slurm_attempt(plan: CellPlan, client: SlurmClient, watcher: JobWatcher, store: ResultsStore,
                      attempt: int, cancel: threading.Event) -> CellResult:
    """Return the stored result of one SLURM attempt (re-attaching to a ledger job if any)."""
    key = plan.planned.cell.key
    job_id = ledger_job(store, plan, attempt, client) or submit(plan, client, store, attempt)
    store.save_cell(replace(initial_result(plan, "running"), attempts=attempt, job_id=job_id,
                            started_at=datetime.now(UTC)))
    status = watcher.wait(job_id, cancel=cancel, timeout_s=plan.profile.cell_timeout_s)
    cancelled = status is None
    if cancelled:
        client.cancel([job_id])
        status = watcher.last(job_id)
    outcome, result = collect(plan, attempt, job_id, status, cancelled)
    store.record_attempt(plan.run_id, key, attempt, status=result.status, job_id=job_id,
                         exit_code=result.exit_code, failure_class=result.failure_class,
                         reason=outcome.reason, finished_at=datetime.now(UTC))
    store.save_cell(result)
    if status is not None:
        store.set_provenance(plan.run_id, {"job_id": job_id, "nodelist": status.node_list,
                                           "partition": status.partition, "queue_wait_s": status.queue_wait_s,
                                           "elapsed_s": status.elapsed_s, "slurm_state": status.raw_state},
                             cell_id=key)
    return result


def import_model_slurm(planned: PlannedCell, profile: ProfileSpec, argv: list[str], target: Path,
                       log_root: Path, client: SlurmClient, cancel: threading.Event) -> str:
    """Import one model as a 1-task SLURM job unless already complete; return what happened.

    Raises:
        LaunchError: the import job failed (its output file is named in the message).
    """
    if checkpoint_complete(target):
        return "skipped"
    directory = log_root / planned.model.name
    directory.mkdir(parents=True, exist_ok=True)
    env = cache_env(str(scaling_home() / "cache")) | dict(profile.env)
    req = JobRequest(f"import-{planned.model.name}"[:64], 1, 1, 1 if profile.device == "gpu" else 0,
                     str(directory), argv, env, None, [v for k, v in env.items() if k in CACHE_VARS])
    script = directory / "import.sbatch"
    script.write_text(render_sbatch(req, profile))
    job_id = client.submit(script, cwd=directory, env=submission_env(profile), extra_args=["--no-requeue"])
    interval = profile.slurm.poll_interval_s if profile.slurm else 10.0
    with JobWatcher(client.statuses, interval) as watcher:
        status = watcher.wait(job_id, cancel=cancel, timeout_s=profile.cell_timeout_s)
    if status is None:
        client.cancel([job_id])
        raise LaunchError(f"import of {planned.model.name} cancelled or timed out (job {job_id})")
    if not checkpoint_complete(target):
        out = directory / f"slurm-{job_id}.out"
        tail = read_log_text(out)[-500:]
        raise LaunchError(f"import of {planned.model.name} failed (job {job_id}, {status.state}); see {out}: {tail}")
    return "imported"
