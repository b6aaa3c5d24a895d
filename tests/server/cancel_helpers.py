"""Helpers for the cancel-path tests: ledger jobs, squeue, the stored record, latency.

Real parts only: the real ``prefect server``, the real SLURM, the real results DB (SQLite).
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_URL, temporary_settings

#: Every cancel path must take every job of the run out of squeue within this many seconds.
CANCEL_DEADLINE_S = 10.0


@dataclass
class Started:
    """A run seen with all its cell jobs in SLURM's queue."""

    run_id: str
    jobs: list[str]
    flow_run_id: str | None


def _query(db: Path, sql: str, *args: object) -> list[tuple]:
    try:
        with sqlite3.connect(db) as con:
            return list(con.execute(sql, args))
    except sqlite3.Error:
        return []


def ledger_jobs(db: Path, run_id: str) -> list[str]:
    """Return the SLURM job ids the ledger recorded for ``run_id`` (cell attempts)."""
    return [r[0] for r in _query(db, "select job_id from attempts where run_id=? and job_id is not null", run_id)]


def all_ledger_jobs(db: Path) -> list[str]:
    """Return every SLURM job id in the ledger of ``db`` (teardown cleanup)."""
    return [r[0] for r in _query(db, "select job_id from attempts where job_id is not null")]


def in_queue(job_ids: list[str]) -> list[str]:
    """Return the ids of ``job_ids`` that ``squeue`` still lists (pending, running, completing)."""
    out = subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True).stdout.split()
    return [j for j in job_ids if j in out]


def run_of_flow_run(home: Path, flow_run_id: str) -> str | None:
    """Return the run id whose directory records ``flow_run_id``."""
    for marker in (home / "runs").glob("*/flow_run_id"):
        if marker.read_text().strip() == flow_run_id:
            return marker.parent.name
    return None


def newest_run(home: Path, after: float) -> tuple[str, str] | None:
    """Return ``(run id, flow run id)`` of a run directory created after ``after`` (epoch s)."""
    for marker in (home / "runs").glob("*/flow_run_id"):
        if marker.stat().st_mtime >= after:
            return marker.parent.name, marker.read_text().strip()
    return None


def wait_started(home: Path, find: callable, n_jobs: int = 2, timeout_s: float = 240,
                 log: Path | None = None) -> Started:
    """Return the run once ``find()`` names it and its ``n_jobs`` cell jobs are all in squeue."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = find()
        if found:
            run_id, flow_run_id = found
            jobs = ledger_jobs(home / "results.db", run_id)
            if len(jobs) >= n_jobs and len(in_queue(jobs)) == len(jobs):
                return Started(run_id, jobs, flow_run_id)
        time.sleep(0.5)
    raise AssertionError(f"no run with {n_jobs} queued jobs after {timeout_s} s\n"
                         + (log.read_text(errors="replace")[-3000:] if log and log.exists() else ""))


def wait_jobs_gone(jobs: list[str], t0: float, log: Path | None = None) -> float:
    """Return the seconds from ``t0`` until no job of ``jobs`` is in squeue; fail past the deadline."""
    while in_queue(jobs) and time.monotonic() - t0 < CANCEL_DEADLINE_S:
        time.sleep(0.1)
    left = in_queue(jobs)
    latency = time.monotonic() - t0
    assert not left, (f"jobs still in squeue {CANCEL_DEADLINE_S:.0f} s after cancel: {left}\n"
                      + (log.read_text(errors="replace")[-3000:] if log and log.exists() else ""))
    return latency


def stored_record(db: Path, run_id: str, timeout_s: float = 30) -> tuple[str, dict[str, str]]:
    """Return ``(run status, {cell: status})`` once the run is final (or after ``timeout_s``)."""
    deadline = time.monotonic() + timeout_s
    while True:
        status = next(iter(_query(db, "select status from runs where run_id=?", run_id)), ("?",))[0]
        cells = dict(_query(db, "select cell_id, status from cells where run_id=?", run_id))
        settled = status != "running" and not {"pending", "running"} & set(cells.values())
        if settled or time.monotonic() > deadline:
            return status, cells
        time.sleep(0.5)


def assert_cancelled_record(db: Path, run_id: str) -> None:
    """Assert the run and every cell are stored ``cancelled`` (none left pending/running)."""
    status, cells = stored_record(db, run_id)
    assert status == "cancelled", (status, cells)
    assert cells and set(cells.values()) == {"cancelled"}, cells
    reasons = [r[0] for r in _query(db, "select failure_class from cells where run_id=?", run_id)]
    assert set(reasons) == {"cancelled"}, reasons


async def _final_state(api_url: str, flow_run_id: str, timeout_s: float) -> str:
    async with get_client() as client:
        deadline = time.monotonic() + timeout_s
        while True:
            state = (await client.read_flow_run(flow_run_id)).state
            if (state and state.is_final()) or time.monotonic() > deadline:
                return state.type.value if state else "NONE"
            await asyncio.sleep(0.5)


def flow_run_final_state(api_url: str, flow_run_id: str, timeout_s: float = 60) -> str:
    """Return the flow run's state type once final (CANCELLED, COMPLETED, ...) or after ``timeout_s``."""
    with temporary_settings({PREFECT_API_URL: api_url}):
        return asyncio.run(_final_state(api_url, flow_run_id, timeout_s))


def flow_run_id_from(text: str) -> str:
    """Return the flow run UUID printed by ``prefect deployment run``."""
    match = re.search(r"UUID: ([0-9a-f-]{36})", text)
    assert match, text
    return match.group(1)
