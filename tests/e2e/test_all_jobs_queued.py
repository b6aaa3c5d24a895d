"""No silent cap: a 40-cell matrix on the real SLURM has all 40 jobs in squeue at once.

The CLI runs the ``forty`` matrix (40 one-rank cells held by ``flaky_nemo.py``'s ``sleep`` fault, a
named test stand-in); once one ``squeue`` lists all 40 ledger jobs, SIGTERM cancels the run (and the
jobs leave the queue within the cancel deadline). Prints how long the 40 submissions took.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from tests.prefect.test_slurm_flow import FIX, write_profile
from tests.server import cancel_helpers as ch
from tests.slurm.conftest import in_ci, slurm_problem

pytestmark = [pytest.mark.slurm, pytest.mark.slow]
CLI = str(Path(sys.executable).parent / "scaling-matrix")
FORTY = str(FIX / "matrices" / "forty.yaml")


def _submitted(db: Path) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in ch._query(db, "select job_id, started_at from attempts where job_id is not null")]


def test_forty_cells_are_all_queued_at_once(tmp_path: Path) -> None:
    problem = slurm_problem()
    if problem:
        (pytest.fail if in_ci() else pytest.skip)(problem)
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update(SCALING_HOME=str(home), PREFECT_HOME=str(tmp_path / "prefect"))
    profile = write_profile(tmp_path, "slurm", faults="1=sleep", retries=0)
    log = tmp_path / "run.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([CLI, "run", "--matrix", FORTY, "--profile", profile], env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    db, jobs, seen = home / "results.db", [], []
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            jobs = [j for j, _ in _submitted(db)]
            if len(jobs) == 40 and len(seen := ch.in_queue(jobs)) == 40:  # ONE squeue lists all 40
                break
            time.sleep(0.5)
        assert len(seen) == 40, (len(jobs), len(seen), log.read_text()[-3000:])
        starts = sorted(datetime.fromisoformat(s) for _, s in _submitted(db))
        print(f"40 cells: first to last submission {(starts[-1] - starts[0]).total_seconds():.2f} s")
        run_id = ch._query(db, "select run_id from runs")[0][0]
        t0 = time.monotonic()
        os.kill(proc.pid, signal.SIGTERM)
        print(f"cancel of 40 queued jobs: {ch.wait_jobs_gone(jobs, t0, log):.2f} s")
        assert proc.wait(timeout=120) == 130, log.read_text()[-3000:]
        ch.assert_cancelled_record(db, run_id)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        left = ch.in_queue(jobs)
        if left:
            subprocess.run(["scancel", *left], capture_output=True, timeout=60)
