"""Crash safety on real SLURM: SIGKILL the orchestrator mid-matrix, resume, exactly one job per cell."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from scaling_matrix.adapters.store import ResultsStore
from tests.prefect.test_slurm_flow import QUICK, write_profile
from tests.slurm.conftest import in_ci, slurm_problem

pytestmark = [pytest.mark.slurm, pytest.mark.slow]
CLI = str(Path(sys.executable).parent / "scaling-matrix")


def _run_id(db: Path) -> str:
    """Return the id of the only run in ``db`` (the first invocation names it; --resume needs a known run)."""
    with sqlite3.connect(db) as con:
        [(run_id,)] = con.execute("select run_id from runs").fetchall()
    return run_id


def _submitted_jobs(db: Path) -> list[str]:
    if not db.exists():
        return []
    try:
        with sqlite3.connect(db) as con:
            return [r[0] for r in con.execute("select job_id from attempts where job_id is not null")]
    except sqlite3.Error:
        return []


def test_sigkill_then_resume_reattaches(tmp_path: Path) -> None:
    problem = slurm_problem()
    if problem:
        (pytest.fail if in_ci() else pytest.skip)(problem)
    home = tmp_path / "home"
    env = {**os.environ, "SCALING_HOME": str(home), "PREFECT_HOME": str(tmp_path / "prefect"),
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_API_URL": ""}
    env.pop("PREFECT_API_URL")
    profile = write_profile(tmp_path, "slurm")
    cmd = [CLI, "run", "--matrix", QUICK, "--profile", profile]
    started = datetime.now().strftime("%Y-%m-%dT%H:%M:%S")
    with open(tmp_path / "first.log", "wb") as log:
        first = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    db = home / "results.db"
    deadline = time.monotonic() + 180
    while len(_submitted_jobs(db)) < 2 and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.5)
    jobs_before = _submitted_jobs(db)
    assert len(jobs_before) == 2, (tmp_path / "first.log").read_text()[-2000:]
    os.killpg(first.pid, signal.SIGKILL)  # the orchestrator dies; its SLURM jobs keep going
    first.wait()
    run_id = _run_id(db)
    second = subprocess.run([*cmd, "--resume", run_id], env=env, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    store = ResultsStore(f"sqlite:///{db}")
    cells = store.cells(run_id)
    assert [c["status"] for c in cells] == ["completed", "completed"]
    attempts = store.attempts(run_id)
    assert sorted(a["job_id"] for a in attempts) == sorted(jobs_before)  # re-attached, no resubmission
    assert all(a["attempt"] == 1 for a in attempts)
    sacct = subprocess.run(["sacct", "-n", "-X", "-P", "-S", started, "-o", "JobID,WorkDir"],
                           capture_output=True, text=True)
    if sacct.returncode == 0:  # accounting on: exactly one job per cell in this run's directories
        mine = [ln for ln in sacct.stdout.splitlines() if str(home / "runs" / run_id) in ln]
        assert len(mine) == 2, sacct.stdout


def test_killed_between_ledger_write_and_sbatch_answer_reattaches_by_comment(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from scaling_matrix.adapters.runner import SubprocessRunner
    from scaling_matrix.adapters.slurm import SlurmClient
    from scaling_matrix.cells import plan_cell
    from scaling_matrix.config.loading import load_matrix, load_profile
    from scaling_matrix.backends.slurm import SlurmBackend
    from scaling_matrix.cells import job_spec
    from scaling_matrix.execution import ledger_job
    from scaling_matrix.matrix import plan_cells
    from scaling_matrix.paths import results_url

    problem = slurm_problem()
    if problem:
        (pytest.fail if in_ci() else pytest.skip)(problem)
    monkeypatch.setenv("SCALING_HOME", str(tmp_path / "home"))
    prof = load_profile(write_profile(tmp_path, "slurm"))
    plan = plan_cell("crash-window", plan_cells(load_matrix(QUICK), prof)[0], prof)
    key, store, client = plan.planned.cell.key, ResultsStore(results_url()), SlurmClient(SubprocessRunner())
    backend, spec = SlurmBackend(client), job_spec(plan, 1)
    # submit() up to the crash: ledger says 'submitting', sbatch accepts the job, its answer is lost
    script = backend.write_script(spec)
    store.record_attempt(plan.run_id, key, 1, status="submitting")
    lost = client.submit(script, cwd=spec.workdir, extra_args=["--no-requeue", f"--comment={spec.comment}"])
    try:
        assert ledger_job(store, plan, 1, backend) == lost  # found by its comment, not submitted again
        [row] = store.attempts(plan.run_id, key)
        assert (row["status"], str(row["job_id"])) == ("submitted", lost)
        assert ledger_job(store, plan, 1) == lost  # from now on straight from the ledger
        assert ledger_job(store, plan, 2, backend) is None  # no row for attempt 2: submit it
    finally:
        client.cancel([lost])
