"""A SQLite results DB waits for another writer longer than sqlite3's 5 s default: at the start of a run
every cell writes its ledger row at once (200 cells on the 2-core machine once hit "database is locked")."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from scaling_matrix.adapters.store import SQLITE_BUSY_TIMEOUT_S, ResultsStore


def test_a_write_waits_out_a_writer_holding_the_lock_past_five_seconds(tmp_path: Path) -> None:
    db = tmp_path / "results.db"
    store = ResultsStore(f"sqlite:///{db}")
    assert SQLITE_BUSY_TIMEOUT_S > 5
    other = sqlite3.connect(db, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # another writer holds the write lock for 6 s
    release = threading.Timer(6.0, other.commit)
    release.start()
    t0 = time.monotonic()
    store.record_attempt("RUN", "cell", 1, status="submitting")  # sqlite3's default 5 s: database is locked
    waited = time.monotonic() - t0
    release.join()
    other.close()
    assert waited >= 5.5, waited  # it really waited for the lock (control: the lock was held)
    assert [a["status"] for a in store.attempts("RUN")] == ["submitting"]
