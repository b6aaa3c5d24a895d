"""``prefect deployment run scaling-matrix/nightly`` against a real server, exactly as a user does it.

Server: ``prefect server start``; runner: ``python -m deployments.nightly`` (flow.serve);
trigger: the ``prefect deployment run`` CLI. Smoke matrix, local profile.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from prefect.settings import PREFECT_API_URL, temporary_settings

from tests.server.conftest import BIN, PrefectServer, stop

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.server, pytest.mark.slow]


def _cli(server: PrefectServer, *args: str, timeout: float = 60) -> str:
    res = subprocess.run([str(BIN / "prefect"), *args], env=server.env, cwd=REPO, capture_output=True,
                         text=True, timeout=timeout)
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout


async def _wait_for_run(flow_run_id: str, timeout_s: float):
    async with get_client() as client:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            fr = await client.read_flow_run(flow_run_id)
            if fr.state is not None and fr.state.is_final():
                return fr
            await asyncio.sleep(2)
    raise TimeoutError(f"flow run {flow_run_id} not finished after {timeout_s} s")


async def _artifacts(keys: list[str]):
    async with get_client() as client:
        return await client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=keys)))


def test_nightly_deployment_runs_smoke_on_real_server(prefect_server: PrefectServer, tmp_path: Path) -> None:
    env = {**prefect_server.env, "SCALING_HOME": str(tmp_path / "scaling-home")}
    serve_log = open(tmp_path / "serve.log", "wb")
    serve = subprocess.Popen([sys.executable, "-m", "deployments.nightly"], cwd=REPO, env=env,
                             stdout=serve_log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        for _ in range(60):  # the serve process registers the deployment
            res = subprocess.run([str(BIN / "prefect"), "deployment", "inspect", "scaling-matrix/nightly"],
                                 env=env, capture_output=True, text=True)
            if res.returncode == 0:
                break
            time.sleep(1)
        assert "0 2 * * *" in res.stdout, res.stdout + res.stderr
        out = _cli(prefect_server, "deployment", "run", "scaling-matrix/nightly")
        flow_run_id = re.search(r"UUID: ([0-9a-f-]{36})", out).group(1)
        with temporary_settings({PREFECT_API_URL: prefect_server.api_url}):
            fr = asyncio.run(_wait_for_run(flow_run_id, timeout_s=480))
            assert fr.state.is_completed(), (fr.state, (tmp_path / "serve.log").read_text()[-3000:])
            arts = asyncio.run(_artifacts(["summary-smoke",
                                           "scaling-smoke-tiny-llama-data-parallel-tiny-cpu"]))
        assert {a.key for a in arts} == {"summary-smoke", "scaling-smoke-tiny-llama-data-parallel-tiny-cpu"}
        table = next(a for a in arts if a.type == "table")
        assert "workload=tiny, device=cpu" in table.description
    finally:
        stop(serve)
        serve_log.close()
