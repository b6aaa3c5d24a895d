"""The results database misbehaves while a run stores its results, on the real SLURM and a real Prefect
server: SQLite's writer lock held by another process past the driver's 5 s busy timeout, and PostgreSQL
connections terminated (``pg_terminate_backend``, only the run's own, found by their application_name)
again and again while the job ends. Every write is retried: no row is lost, none stored twice."""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from scaling_matrix.adapters.store import ResultsStore
from tests.chaos.conftest import Server, fault_fired, record, start_run, wait_for, write_profile
from tests.chaos.slurm_state import in_queue
from tests.storage.conftest import fresh_pg_schema, pg_base_url

pytestmark = [pytest.mark.slurm, pytest.mark.server, pytest.mark.slow, pytest.mark.timeout(300)]

STALL = "hang@2,seconds=4,once"  # the job ends a few seconds after the fault fired: while the DB misbehaves


def _hold_lock(db: Path, seconds: float, taken: threading.Event) -> None:
    con = sqlite3.connect(db, isolation_level=None, timeout=30)
    try:
        con.execute("BEGIN EXCLUSIVE")
        taken.set()
        time.sleep(seconds)
        con.execute("COMMIT")
    finally:
        con.close()


def _stored_once(store: ResultsStore, run_id: str) -> tuple[str, list[tuple]]:
    """Return (run status, [(cell status, attempts, ledger rows)]) and check no job is left queued."""
    run = store.run(run_id)
    assert run is not None
    out = []
    for cell in store.cells(run_id):
        ledger = store.attempts(run_id, cell["cell_id"])
        assert not in_queue([str(a["job_id"]) for a in ledger if a["job_id"]])
        out.append((cell["status"], cell["attempts"], [(a["attempt"], a["status"]) for a in ledger]))
    return str(run["status"]), out


def test_sqlite_writer_lock_held_while_the_job_ends(chaos_server: Server, home: Path, tmp_path: Path) -> None:
    run = start_run(chaos_server, home, write_profile(tmp_path, STALL, nodelist=None), name="sqlite-lock")
    wait_for(lambda: fault_fired(home), 180, "the job's stall", run)
    held_s, taken = 12.0, threading.Event()
    holder = threading.Thread(target=_hold_lock, args=(home / "results.db", held_s, taken), daemon=True)
    t0 = time.monotonic()
    holder.start()
    assert taken.wait(30)
    assert run.wait() == 0, run.tail()
    holder.join()
    store = ResultsStore(f"sqlite:///{home / 'results.db'}")
    status, stored = _stored_once(store, str(run.run_id()))
    assert (status, stored) == ("completed", [("completed", 1, [(1, "completed")])])
    ResultsStore.release(store.url)
    record("sqlite-lock", f"writer lock held {held_s:.0f} s from mid-job: run completed {time.monotonic() - t0:.1f} s "
                          "after the lock was taken; 1 cell, 1 attempt row, nothing lost or doubled")


@pytest.fixture
def pg_url() -> Iterator[tuple[str, str]]:
    """Yield (URL of a fresh schema whose connections carry their own application_name, that name)."""
    app = f"chaos-{uuid.uuid4().hex[:8]}"
    with fresh_pg_schema(application_name=app) as url:
        yield url, app


def _terminate_loop(base: str, app: str, until: threading.Event, killed: list[int]) -> None:
    """Terminate every backend named ``app`` every 50 ms until ``until`` is set; count them in ``killed``."""
    admin = create_engine(base)
    try:
        with admin.connect() as conn:
            while not until.is_set():
                killed[0] += conn.execute(text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = :app"),
                    {"app": app}).scalar_one()
                conn.commit()
                until.wait(0.05)
    finally:
        admin.dispose()


def test_postgres_connections_terminated_while_the_job_ends(chaos_server: Server, home: Path, tmp_path: Path,
                                                            pg_url: tuple[str, str]) -> None:
    url, app = pg_url
    run = start_run(chaos_server, home, write_profile(tmp_path, STALL, nodelist=None), name="pg-terminate",
                    env={"SCALING_DB_URL": url})
    wait_for(lambda: fault_fired(home), 180, "the job's stall", run)
    stop, killed = threading.Event(), [0]
    killer = threading.Thread(target=_terminate_loop, args=(pg_base_url(), app, stop, killed), daemon=True)
    t0 = time.monotonic()
    killer.start()
    time.sleep(10)  # the job ends (~4 s) and the run stores it while its connections keep being killed
    stop.set()
    killer.join()
    assert run.wait() == 0, run.tail()
    store = ResultsStore(url)
    try:
        status, stored = _stored_once(store, str(run.run_id()))
    finally:
        ResultsStore.release(url)
    assert (status, stored) == ("completed", [("completed", 1, [(1, "completed")])])
    assert killed[0] > 0
    record("pg-terminate", f"{killed[0]} backends terminated over 10 s from mid-job: run completed "
                           f"{time.monotonic() - t0:.1f} s after the first; 1 cell, 1 attempt row")

