"""The installed Prefect + SQLAlchemy pair can run the real server's scheduler service.

Prefect 3.8.8 with SQLAlchemy 2.1 fails in the scheduler service ("Can't evaluate bulk DML
statement") and no scheduled run is ever created, while a manual ``deployment run`` still works.
This test gives a real server a deployment with a nightly cron and asks for the runs the
scheduler must create on its own (the recent-deployments loop runs every 5 s).
"""

from __future__ import annotations

import asyncio
import time

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import DeploymentScheduleCreate
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
from prefect.client.schemas.schedules import CronSchedule
from prefect.settings import PREFECT_API_URL, temporary_settings

from tests.server.conftest import PrefectServer

pytestmark = [pytest.mark.server]


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
