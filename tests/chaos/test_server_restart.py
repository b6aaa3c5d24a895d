"""The Prefect server restarts while cells run (real server, real SLURM, ``scaling-matrix run`` against it).

Two 1-rank cells stall mid-job; the server is stopped (SIGTERM, as a service restart does), stays down
while both jobs end and the run tries to report them, and is started again on the same port and
database. The run recovers: the CLI exits 0, no job of the run is left in squeue, both cells and the run
are stored completed, and the flow run is COMPLETED in the API. Before flows/api_wait.py the analysis
subflow failed on the first refused connection and the run row stayed ``running`` (measured).
"""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_URL, temporary_settings

from tests.chaos.conftest import FIX, Server, cells, ledger_jobs, record, rows, start_run, wait_for, write_profile
from tests.chaos.slurm_state import in_queue

pytestmark = [pytest.mark.slurm, pytest.mark.server, pytest.mark.slow, pytest.mark.timeout(400)]

TWO_CELLS = str(FIX / "matrices" / "chaos-two.yaml")
DOWN_S = 12.0  # longer than the stall left when the server goes: both jobs end while it is down


async def _flow_run_state(api_url: str, run_home: Path, run_id: str) -> str:
    flow_run_id = (run_home / "runs" / run_id / "flow_run_id").read_text().strip()
    async with get_client() as client:
        deadline = time.monotonic() + 60
        while True:
            state = (await client.read_flow_run(flow_run_id)).state
            if (state and state.is_final()) or time.monotonic() > deadline:
                return state.type.value if state else "NONE"
            await asyncio.sleep(0.5)


def _markers(home: Path) -> int:
    return len(list((home / "runs").glob("*/*/.nemo_log.tiny-fault-*.fired"))) if (home / "runs").exists() else 0


def test_server_restart_while_cells_run(chaos_server: Server, home: Path, tmp_path: Path) -> None:
    profile = write_profile(tmp_path, "hang@2,seconds=6,once", nodelist=None)
    run = start_run(chaos_server, home, profile, matrix=TWO_CELLS, name="server-restart")
    wait_for(lambda: _markers(home) == 2, 240, "both cells stalled mid-job", run)
    chaos_server.stop()
    time.sleep(DOWN_S)
    restart_s = chaos_server.start()
    up = time.monotonic()
    code = run.wait(300)
    run_id = str(run.run_id())
    jobs = ledger_jobs(home, run_id)
    assert jobs and not in_queue(jobs), f"orphan jobs: {in_queue(jobs)}"
    stored = {c["cell_id"]: c["status"] for c in cells(home, run_id)}
    (run_row,) = rows(home, "select status from runs where run_id = ?", run_id)
    assert len(stored) == 2 and set(stored.values()) <= {"completed", "failed", "cancelled"}, stored
    assert run_row["status"] != "running", run_row
    with temporary_settings({PREFECT_API_URL: chaos_server.api_url}):
        api_state = asyncio.run(_flow_run_state(chaos_server.api_url, home, run_id))
    assert api_state in ("COMPLETED", "FAILED", "CRASHED"), api_state
    # recovered: the flow waited for the API (flows/api_wait.py) instead of failing at its analysis subflow
    assert (code, set(stored.values()), run_row["status"], api_state) == (0, {"completed"}, "completed",
                                                                           "COMPLETED"), run.tail()
    waited = re.search(r"Prefect API answered after ([0-9.]+) s", run.log.read_text(errors="replace"))
    assert waited, run.tail()
    record("server-restart", f"server down {DOWN_S:.0f} s (+{restart_s:.1f} s restart) while 2 jobs ended: "
                             f"recovered (flow waited {waited[1]} s for the API; exit 0, run completed, cells "
                             f"{sorted(stored.values())}, flow run {api_state}) {time.monotonic() - up:.1f} s "
                             f"after the server was back; {len(jobs)} jobs, none left")
