"""The results store through a busy database: SQLite's writer lock held by another process past the
driver's busy timeout, and a PostgreSQL connection terminated (``pg_terminate_backend``) in the middle of
a write. Every write is retried and lands exactly once; negative controls show the same fault fails a
call without the retry. Real SQLite and real PostgreSQL; nothing mocked."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from scaling_matrix.adapters.store import ResultsStore
from tests.storage.conftest import fresh_pg_schema
from tests.storage.test_store import _cell, _run

LOCK_HELD_S = 7.0  # longer than the driver's 5 s busy timeout: without a retry the write fails
DROPPED = "server closed the connection unexpectedly"  # libpq's words for a terminated backend


def _hold_sqlite_writer_lock(path: Path, seconds: float, taken: threading.Event) -> None:
    """Hold SQLite's exclusive writer lock on ``path`` from another connection for ``seconds``."""
    con = sqlite3.connect(path, isolation_level=None)
    try:
        con.execute("BEGIN EXCLUSIVE")
        taken.set()
        time.sleep(seconds)
        con.execute("COMMIT")
    finally:
        con.close()


def _locked(path: Path, seconds: float = LOCK_HELD_S) -> threading.Thread:
    taken = threading.Event()
    holder = threading.Thread(target=_hold_sqlite_writer_lock, args=(path, seconds, taken), daemon=True)
    holder.start()
    assert taken.wait(10)
    return holder


def test_sqlite_writes_wait_out_a_held_writer_lock(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    db = tmp_path / "results.db"
    store = ResultsStore(f"sqlite:///{db}")
    _run(store, "r1")
    caplog.set_level(logging.WARNING, logger="scaling_matrix.adapters.db_retry")
    holder = _locked(db)
    start = time.monotonic()
    writers = [threading.Thread(target=store.save_cell, args=(_cell("r1", i),)) for i in range(2)]
    writers += [threading.Thread(target=store.record_attempt, args=("r1", f"c{i}", 1), kwargs={"status": "submitted"})
                for i in range(2)]
    for w in writers:
        w.start()
    for w in writers:
        w.join(60)
    waited = time.monotonic() - start
    holder.join()
    assert len(store.cells("r1")) == 2 and len(store.attempts("r1")) == 2  # nothing lost, nothing twice
    assert waited >= LOCK_HELD_S - 1
    retries = [r for r in caplog.records if "database is locked" in r.getMessage()]
    assert retries, "the writes never met the lock"
    print(f"sqlite writer lock held {LOCK_HELD_S:.0f} s: 4 writes landed after {waited:.1f} s, "
          f"{len(retries)} retries")
    ResultsStore.release(store.url)


def test_negative_control_the_lock_fails_a_write_without_the_retry(tmp_path: Path) -> None:
    db = tmp_path / "results.db"
    store = ResultsStore(f"sqlite:///{db}")
    _run(store, "r1")
    holder = _locked(db)
    with pytest.raises(OperationalError, match="database is locked"):
        ResultsStore.save_cell.__wrapped__(store, _cell("r1", 0))  # the same call, without db_retry
    holder.join()
    ResultsStore.release(store.url)


@pytest.fixture
def pg_url() -> Iterator[tuple[str, str]]:
    """Yield (URL of a fresh schema whose connections carry their own application_name, that name)."""
    app = f"chaos-{uuid.uuid4().hex[:8]}"
    with fresh_pg_schema(application_name=app) as url:
        yield url, app


def _terminate_mid_write(url: str, app: str, write: object) -> tuple[int, float]:
    """Run ``write()`` while its row is locked by another session, terminate the writer's backend as it
    waits inside its transaction, release the lock; return (backends terminated, seconds of the write)."""
    admin = create_engine(url)
    with admin.connect() as lock:
        tx = lock.begin()
        lock.execute(text("SELECT 1 FROM cells WHERE run_id = 'r1' FOR UPDATE"))
        start = time.monotonic()
        writer = threading.Thread(target=write)  # type: ignore[arg-type]
        writer.start()
        killed = 0
        for _ in range(100):  # the writer's backend, waiting on our row lock
            killed = lock.execute(text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = :app "
                "AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'"), {"app": app}).scalar_one()
            if killed:
                break
            time.sleep(0.05)
        time.sleep(0.5)
        tx.rollback()
    writer.join(60)
    admin.dispose()
    return killed, time.monotonic() - start


def test_postgres_write_survives_its_connection_being_terminated(pg_url: tuple[str, str],
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    url, app = pg_url
    store = ResultsStore(url)
    _run(store, "r1")
    store.save_cell(_cell("r1", 0, "running", None))
    caplog.set_level(logging.WARNING, logger="scaling_matrix.adapters.db_retry")
    killed, seconds = _terminate_mid_write(url, app, lambda: store.save_cell(_cell("r1", 0, "completed", 0.5)))
    assert killed == 1
    rows = store.cells("r1")
    assert [(r["status"], r["median_step_time_s"]) for r in rows] == [("completed", 0.5)]  # landed once
    assert any(DROPPED in r.getMessage() for r in caplog.records), [r.getMessage() for r in caplog.records]
    print(f"postgres backend terminated mid-write: the write landed after {seconds:.2f} s")


def test_negative_control_a_terminated_write_fails_without_the_retry(pg_url: tuple[str, str]) -> None:
    url, app = pg_url
    store = ResultsStore(url)
    _run(store, "r1")
    store.save_cell(_cell("r1", 0, "running", None))
    errors: list[BaseException] = []

    def bare_write() -> None:
        try:
            ResultsStore.save_cell.__wrapped__(store, _cell("r1", 0, "completed", 0.5))
        except Exception as exc:  # noqa: BLE001 - the failure is the point
            errors.append(exc)

    killed, _ = _terminate_mid_write(url, app, bare_write)
    assert killed == 1 and errors and DROPPED in str(errors[0])
    assert [r["status"] for r in store.cells("r1")] == ["running"]
