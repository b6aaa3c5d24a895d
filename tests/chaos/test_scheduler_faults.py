"""What the scheduler does to a running job, on the real SLURM, through ``scaling-matrix run`` and a real
Prefect server: the node goes DOWN, the time limit hits, an admin requeues it, a higher-tier job preempts
it. Each asserts the end state in squeue/sacct and in the results DB, and records its latencies.

The cell's job is pinned to the second node and its tiny engine hangs before step 2 on the first attempt
(``SCALING_TINY_FAULT=hang@2,once``), so the fault lands mid-job; a retry runs clean.
"""

from __future__ import annotations

import json
import subprocess
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.chaos.conftest import (NODE2, Run, Server, attempts, cells, fault_fired, ledger_jobs, record, start_run,
                                  wait_for, write_profile)
from tests.chaos.slurm_state import assert_sacct, in_queue, only_ours_on, resume_node
from tests.slurm.conftest import in_ci

pytestmark = [pytest.mark.slurm, pytest.mark.server, pytest.mark.slow, pytest.mark.timeout(300)]


def _hanging_job(run: Run) -> tuple[str, str]:
    """Return (run id, job id) once the first attempt's engine is hanging mid-job."""
    wait_for(lambda: fault_fired(run.home), 180, "the first attempt's fault", run)
    run_id = run.run_id()
    assert run_id
    return run_id, ledger_jobs(run.home, run_id)[0]


def _final(run: Run, run_id: str, code: int) -> tuple[list[dict], dict]:
    """Return (ledger rows, the one cell row) after the CLI exited with ``code`` and no job is left queued."""
    assert run.wait() == code, run.tail()
    jobs = ledger_jobs(run.home, run_id)
    assert not in_queue(jobs), f"jobs left in squeue: {in_queue(jobs)}"
    (cell,) = cells(run.home, run_id)
    return attempts(run.home, run_id), cell


def _stored(run: Run, run_id: str, n: int) -> float:
    """Return the monotonic time at which attempt ``n`` was stored with a failure class."""
    wait_for(lambda: len(a := attempts(run.home, run_id)) >= n and a[n - 1]["failure_class"], 120,
             f"attempt {n} stored", run)
    return time.monotonic()


def test_node_down_mid_job_is_node_fail_and_resubmitted(chaos_server: Server, home: Path, tmp_path: Path) -> None:
    run = start_run(chaos_server, home, write_profile(tmp_path, "hang@2,once"), name="node-down")
    run_id, job = _hanging_job(run)
    only_ours_on(NODE2, [job])
    t0 = time.monotonic()
    try:
        subprocess.run(["scontrol", "update", f"NodeName={NODE2}", "State=DOWN", "Reason=chaos-test"],
                       check=True, capture_output=True, timeout=30)
        stored = _stored(run, run_id, 1)
    finally:
        resume_node(NODE2)
    back = time.monotonic()
    ledger, cell = _final(run, run_id, 0)
    assert [(a["attempt"], a["failure_class"]) for a in ledger] == [(1, "node_fail"), (2, "completed")]
    first, second = (str(a["job_id"]) for a in ledger)
    assert first == job != second  # resubmitted as a new job
    assert_sacct({first: "NODE_FAIL", second: "COMPLETED"})
    assert (cell["status"], cell["attempts"]) == ("completed", 2)
    record("node-down", f"DOWN -> attempt 1 stored node_fail {stored - t0:.1f} s; node back {back - t0:.1f} s; "
                        f"run completed {time.monotonic() - t0:.1f} s after DOWN; attempts 2 (jobs {first}, {second})")


def test_time_limit_is_time_limit_and_not_retried(chaos_server: Server, home: Path, tmp_path: Path) -> None:
    """``time_limit: 1`` (SLURM's minimum) and, as in tests/slurm, EndTime pulled in to now+1 s: slurmctld's
    next limit check (every 30 s) ends it TIMEOUT, as a natural limit would 60-90 s in."""
    run = start_run(chaos_server, home, write_profile(tmp_path, "hang@2,once", time_limit="1"), name="time-limit")
    run_id, job = _hanging_job(run)
    soon = (datetime.now() + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S")
    t0 = time.monotonic()
    subprocess.run(["scontrol", "update", f"JobId={job}", f"EndTime={soon}"], check=True, capture_output=True,
                   timeout=30)
    stored = _stored(run, run_id, 1)
    ledger, cell = _final(run, run_id, 1)
    assert [(a["attempt"], a["failure_class"]) for a in ledger] == [(1, "time_limit")]  # never retried
    assert_sacct({job: "TIMEOUT"})
    assert (cell["status"], cell["failure_class"], cell["attempts"]) == ("failed", "time_limit", 1)
    record("time-limit", f"EndTime reached -> stored time_limit {stored - t0:.1f} s; attempts 1, not retried")


def _scontrol(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["scontrol", *args], capture_output=True, text=True, timeout=30)


def _pending_until(job: str) -> str:
    """Return the BeginTime of ``job`` while it pends on it after a requeue ('' otherwise)."""
    out = subprocess.run(["squeue", "-h", "-j", job, "-o", "%T %r %S"], capture_output=True, text=True).stdout.split()
    return out[2] if out[:2] == ["PENDING", "BeginTime"] else ""


def test_admin_requeue_of_a_running_job_gives_one_result(chaos_server: Server, home: Path, tmp_path: Path) -> None:
    """``scontrol requeue``: refused for our ``--no-requeue`` job; forced (``Requeue=1`` first, as an admin's
    script does) it restarts under the same id, and the run still stores one attempt and one cell row.
    SLURM holds a requeued job until its old credential expires (BeginTime now+~120 s); as with the time
    limit, the test pulls that in (``StartTime=now+5``) instead of waiting it out."""
    run = start_run(chaos_server, home, write_profile(tmp_path, "hang@2,once"), name="requeue")
    run_id, job = _hanging_job(run)
    refused = _scontrol("requeue", job)
    assert refused.returncode != 0, refused
    t0 = time.monotonic()
    assert _scontrol("update", f"JobId={job}", "Requeue=1").returncode == 0
    forced = _scontrol("requeue", job)
    assert forced.returncode == 0, forced
    held = wait_for(lambda: _pending_until(job), 30, "the requeued job pending on its BeginTime", run)
    # SLURM holds it ~120 s (until the old run's credential expires); a rerun in the same second as the
    # revocation has its step refused (srun exit 1: seen once with StartTime=now), so a few seconds later
    assert _scontrol("update", f"JobId={job}", "StartTime=now+5").returncode == 0
    ledger, cell = _final(run, run_id, 0)
    assert [(a["attempt"], str(a["job_id"]), a["failure_class"]) for a in ledger] == [(1, job, "completed")]
    assert (cell["status"], cell["attempts"], str(cell["job_id"])) == ("completed", 1, job)
    assert json.loads(str(cell["metrics"]))["steps_logged"] == 6  # the rerun's log, not both runs' steps
    dup = subprocess.run(["sacct", "-D", "-X", "-n", "-P", "-o", "JobID,State", "-j", job], capture_output=True,
                         text=True).stdout.split()
    assert any("REQUEUED" in d for d in dup) and dup[-1].endswith("COMPLETED"), dup
    record("requeue", f"plain requeue refused ({(refused.stderr or refused.stdout).strip()[:80]}); forced requeue "
                      f"-> pending until {held} (pulled in) -> one attempt, one cell row, completed "
                      f"{time.monotonic() - t0:.1f} s later; "
                      f"sacct records {len(dup)}")


def test_preemption_is_preempted_and_retried(chaos_server: Server, home: Path, tmp_path: Path) -> None:
    """A job in the higher-tier ``urgent`` partition (scripts/local-slurm.sh) needs the second node whole."""
    if "PartitionName=urgent" not in _scontrol("-a", "show", "partition", "urgent").stdout:
        (pytest.fail if in_ci() else pytest.skip)("no 'urgent' partition: run `sudo scripts/local-slurm.sh up`")
    run = start_run(chaos_server, home, write_profile(tmp_path, "hang@2,once"), name="preempt")
    run_id, job = _hanging_job(run)
    only_ours_on(NODE2, [job])
    t0 = time.monotonic()
    urgent = subprocess.run(["sbatch", "--parsable", "-p", "urgent", "-w", NODE2, "--exclusive", "--no-requeue",
                             "-J", "chaos-preemptor", "-o", str(tmp_path / "preemptor.out"), "--wrap", "sleep 3"],
                            capture_output=True, text=True, check=True).stdout.strip()
    stored = _stored(run, run_id, 1)
    ledger, cell = _final(run, run_id, 0)
    assert [(a["attempt"], a["failure_class"]) for a in ledger] == [(1, "preempted"), (2, "completed")]
    second = str(ledger[1]["job_id"])
    assert_sacct({job: "PREEMPTED", urgent: "COMPLETED", second: "COMPLETED"})
    assert (cell["status"], cell["attempts"]) == ("completed", 2)
    record("preempt", f"urgent job submitted -> attempt 1 stored preempted {stored - t0:.1f} s; run completed "
                      f"{time.monotonic() - t0:.1f} s after; attempts 2")
