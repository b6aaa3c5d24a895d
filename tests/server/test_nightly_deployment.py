"""The nightly as users meet it: the real server's scheduler fires it; nobody triggers it by hand.

Server: ``prefect server start``. Two deployments of the ``scaling-matrix`` flow, as the README
makes them, each with a cron a minute or so ahead (UTC) so it fires inside the test:

* served: ``python -m deployments.nightly --cron "M H * * *"`` (flow.serve);
* work pool: ``prefect --no-prompt deploy --all`` from a copy of the repository's ``prefect.yaml``
  (only the name, schedule and parameters changed) and ``prefect worker start --pool ...``.

First, a fast check that the installed Prefect + SQLAlchemy pair can run the scheduler at all
(Prefect 3.8.8 with SQLAlchemy 2.1 fails every loop with "Can't evaluate bulk DML statement" and
creates no scheduled run, while a manual ``deployment run`` still works).

Asserted through the Prefect API: the server created each run from the schedule (auto-scheduled,
``created_by`` SCHEDULE, expected start = the cron time), it completed, and the run itself
carries the tables, summary and plots (the ``analyze`` subflow keeps its own copy). Runner and
worker poll every 2 s instead of 10 s to keep the test short; the scheduler is Prefect's own.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import DeploymentScheduleCreate
from prefect.client.schemas.filters import (ArtifactFilter, ArtifactFilterFlowRunId, DeploymentFilter,
                                           DeploymentFilterId, DeploymentFilterName)
from prefect.client.schemas.schedules import CronSchedule
from prefect.settings import PREFECT_API_URL, temporary_settings

from tests.prefect.test_slurm_flow import QUICK, write_profile
from tests.server.conftest import BIN, PrefectServer, Procs

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.server, pytest.mark.slow]
KEYS = {"summary-quick", "plots-quick", "scaling-quick-tiny-llama-data-parallel-tiny-cpu"}


async def _scheduled_runs_of_new_deployment(timeout_s: float) -> list:
    async with get_client() as client:
        flow_id = await client.create_flow_from_name("scheduler-pair-check")
        dep_id = await client.create_deployment(
            flow_id, "nightly", schedules=[DeploymentScheduleCreate(schedule=CronSchedule(cron="0 2 * * *"))])
        deadline = time.monotonic() + timeout_s
        runs: list = []
        while time.monotonic() < deadline and not runs:
            await asyncio.sleep(1)
            runs = await client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[dep_id])))
        return runs


def test_installed_sqlalchemy_lets_the_scheduler_create_runs(prefect_server: PrefectServer) -> None:
    with temporary_settings({PREFECT_API_URL: prefect_server.api_url}):
        runs = asyncio.run(_scheduled_runs_of_new_deployment(timeout_s=30))
    log = (prefect_server.home / "server.log").read_text(errors="replace")
    assert runs, "the scheduler created no run in 30 s: " + (
        "SQLAlchemy too new for this Prefect (Can't evaluate bulk DML statement); install from requirements.lock"
        if "bulk DML" in log else log[-2000:])
    assert all(r.auto_scheduled and r.created_by and r.created_by.type == "SCHEDULE" for r in runs)
    assert {r.expected_start_time.strftime("%H:%M") for r in runs} == {"02:00"}  # the cron, in UTC


def _fire_time(lead_s: float = 30) -> datetime:
    """Return the first whole UTC minute at least ``lead_s`` from now."""
    t = datetime.now(UTC) + timedelta(seconds=lead_s)
    return t.replace(second=0, microsecond=0) + timedelta(minutes=1)


def _pool_prefect_yaml(tmp_path: Path, cron: str, profile: str) -> Path:
    """Return a copy of the repository's prefect.yaml: deployment 'nightly-pool', ``cron``, quick matrix."""
    data = yaml.safe_load((REPO / "prefect.yaml").read_text())
    (dep,) = data["deployments"]
    dep.update(name="nightly-pool", parameters={"matrix": QUICK, "profile": profile},
               schedules=[{"cron": cron, "timezone": "UTC"}], work_pool={"name": "nightly-pool"})
    path = tmp_path / "prefect.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


async def _scheduled_run(name: str, at: datetime, timeout_s: float):
    """Return the deployment's flow run due ``at`` once it is final."""
    async with get_client() as client:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            runs = await client.read_flow_runs(deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[name])))
            due = [r for r in runs if r.expected_start_time and abs((r.expected_start_time - at).total_seconds()) < 1]
            if due and due[0].state and due[0].state.is_final():
                return due[0], runs
            await asyncio.sleep(2)
    raise TimeoutError(f"no final run of {name} due {at:%H:%M} after {timeout_s} s: {[r.state_name for r in runs]}")


async def _artifact_keys(flow_run_id) -> set[str]:
    async with get_client() as client:
        arts = await client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
    return {a.key for a in arts}


def test_schedule_fires_served_and_worker_deployments(prefect_server: PrefectServer, tmp_path: Path,
                                                      procs: Procs) -> None:
    at = _fire_time()
    cron = f"{at.minute} {at.hour} * * *"
    profile = write_profile(tmp_path, "local")
    env = {**prefect_server.env, "PREFECT_RUNNER_POLL_FREQUENCY": "2", "PREFECT_WORKER_QUERY_SECONDS": "2"}
    procs.start("serve", [sys.executable, "-m", "deployments.nightly", "--matrix", QUICK, "--profile", profile,
                          "--cron", cron], {**env, "SCALING_HOME": str(tmp_path / "home-served")})
    pool_env = {**env, "SCALING_HOME": str(tmp_path / "home-pool")}
    run = lambda *a: subprocess.run(a, env=pool_env, cwd=REPO, capture_output=True, text=True)  # noqa: E731
    assert run(str(BIN / "prefect"), "work-pool", "create", "nightly-pool", "--type", "process").returncode == 0
    res = run(str(BIN / "prefect"), "--no-prompt", "deploy", "--all", "--prefect-file",
              str(_pool_prefect_yaml(tmp_path, cron, profile)))
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    procs.start("worker", [str(BIN / "prefect"), "worker", "start", "--pool", "nightly-pool"], pool_env)
    wait_s = (at - datetime.now(UTC)).total_seconds() + 240
    with temporary_settings({PREFECT_API_URL: prefect_server.api_url}):
        for name, log in (("nightly", "serve.log"), ("nightly-pool", "worker.log")):
            fr, runs = asyncio.run(_scheduled_run(name, at, wait_s))
            assert fr.state.is_completed(), (fr.state, (tmp_path / log).read_text()[-3000:])
            assert fr.auto_scheduled and fr.created_by and fr.created_by.type == "SCHEDULE", fr.created_by
            assert len(runs) >= 2  # the scheduler also queued the next nights, as for a real nightly
            assert KEYS <= asyncio.run(_artifact_keys(fr.id)), f"{name}: artifacts not on the triggered run"
