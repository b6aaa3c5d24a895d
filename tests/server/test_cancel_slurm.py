"""Cancelling a flow run reaches SLURM: real prefect server + process worker + real SLURM.

After ``prefect flow-run cancel``, no job of the run may remain in ``squeue`` within 10 s.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_URL, temporary_settings

from tests.prefect.test_slurm_flow import QUICK, write_profile
from tests.server.conftest import BIN, PrefectServer, stop
from tests.slurm.conftest import in_ci, slurm_problem

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.server, pytest.mark.slurm, pytest.mark.slow]

DEPLOY = """
import sys
from prefect import flow
flow.from_source(source=sys.argv[1], entrypoint="flows/matrix.py:scaling_matrix").deploy(
    name="cancel-test", work_pool_name="cancel-pool",
    parameters={"matrix": sys.argv[2], "profile": sys.argv[3], "run_id": "cancel-run"})
"""


def _ledger_jobs(db: Path) -> list[str]:
    try:
        with sqlite3.connect(db) as con:
            return [r[0] for r in con.execute("select job_id from attempts where job_id is not null")]
    except sqlite3.Error:
        return []


def _in_queue(job_ids: list[str]) -> list[str]:
    out = subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True).stdout.split()
    return [j for j in job_ids if j in out]


async def _state(flow_run_id: str) -> str:
    async with get_client() as client:
        return (await client.read_flow_run(flow_run_id)).state.type.value


def test_cancel_flow_run_scancels_every_job(prefect_server: PrefectServer, tmp_path: Path) -> None:
    problem = slurm_problem()
    if problem:
        (pytest.fail if in_ci() else pytest.skip)(problem)
    home = tmp_path / "home"
    env = {**prefect_server.env, "SCALING_HOME": str(home)}
    profile = write_profile(tmp_path, "slurm", faults="1=sleep,2=sleep")
    run = lambda *a, **kw: subprocess.run(a, env=env, cwd=REPO, capture_output=True, text=True, **kw)  # noqa: E731
    assert run(str(BIN / "prefect"), "work-pool", "create", "cancel-pool", "--type", "process").returncode == 0
    res = run(sys.executable, "-c", DEPLOY, str(REPO), QUICK, profile)
    assert res.returncode == 0, res.stderr[-2000:]
    log = open(tmp_path / "worker.log", "wb")
    worker = subprocess.Popen([str(BIN / "prefect"), "worker", "start", "--pool", "cancel-pool"], env=env,
                              cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        out = run(str(BIN / "prefect"), "deployment", "run", "scaling-matrix/cancel-test").stdout
        flow_run_id = re.search(r"UUID: ([0-9a-f-]{36})", out).group(1)
        deadline = time.monotonic() + 240
        jobs: list[str] = []
        while time.monotonic() < deadline and len(_in_queue(jobs)) < 2:
            jobs = _ledger_jobs(home / "results.db")
            time.sleep(1)
        assert len(_in_queue(jobs)) == 2, (tmp_path / "worker.log").read_text()[-3000:]
        assert run(str(BIN / "prefect"), "flow-run", "cancel", flow_run_id).returncode == 0
        t0 = time.monotonic()
        while _in_queue(jobs) and time.monotonic() - t0 < 10:
            time.sleep(0.25)
        left = _in_queue(jobs)
        assert not left, f"jobs still queued 10 s after cancel: {left}\n" + (tmp_path / "worker.log").read_text()[-3000:]
        with temporary_settings({PREFECT_API_URL: prefect_server.api_url}):
            for _ in range(60):
                if asyncio.run(_state(flow_run_id)) == "CANCELLED":
                    break
                time.sleep(1)
            assert asyncio.run(_state(flow_run_id)) == "CANCELLED"
    finally:
        subprocess.run(["scancel", *_ledger_jobs(home / "results.db")], capture_output=True)
        stop(worker)
        log.close()
