"""Watch every job of a run with ONE backend query per poll (never one query per job).

Cell tasks register their job ids and block in :meth:`JobWatcher.wait`; a single background
thread calls ``query(all active ids)`` (``Backend.poll``: one ``sacct``/``squeue`` for SLURM)
every ``interval_s`` seconds. The interval and the query are injected: a benchmark can count
polls (``polls``) and a fault test can make the query fail.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Protocol


class State(Protocol):
    """Anything a query reports per job: a backend ``JobState`` or a SLURM ``JobStatus``."""

    @property
    def is_terminal(self) -> bool: ...


StatusQuery = Callable[[list[str]], Mapping[str, State]]


class JobWatcher:
    """Shared poller: one status query per interval for all watched jobs."""

    def __init__(self, query: StatusQuery, interval_s: float = 10.0) -> None:
        self._query = query
        self.interval_s = interval_s
        self._lock = threading.Lock()
        self._active: dict[str, threading.Event] = {}
        self._last: dict[str, State] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.polls = 0
        self.error: Exception | None = None

    def __enter__(self) -> JobWatcher:
        self._thread = threading.Thread(target=self._loop, name="slurm-job-watcher", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def watch(self, job_id: str) -> None:
        """Start watching ``job_id`` (idempotent); it is included in the next scheduled poll."""
        with self._lock:
            self._active.setdefault(job_id, threading.Event())

    def last(self, job_id: str) -> State | None:
        """Return the last status seen for ``job_id``, or None."""
        with self._lock:
            return self._last.get(job_id)

    def wait(self, job_id: str, cancel: threading.Event | None = None,
             timeout_s: float | None = None) -> State | None:
        """Return the terminal status of ``job_id``; None if cancelled or timed out first."""
        self.watch(job_id)
        with self._lock:
            done = self._active[job_id]
        waited = 0.0
        while not done.wait(timeout=0.5):
            waited += 0.5
            if (cancel is not None and cancel.is_set()) or (timeout_s is not None and waited > timeout_s):
                return None
            if self.error is not None:
                raise self.error
        return self.last(job_id)

    def poll_once(self) -> None:
        """Query the scheduler once for every active job and release finished waiters."""
        with self._lock:
            ids = [j for j, ev in self._active.items() if not ev.is_set()]
        if not ids:
            return
        statuses = self._query(ids)
        self.polls += 1
        with self._lock:
            for job_id, status in statuses.items():
                self._last[job_id] = status
                if status.is_terminal and job_id in self._active:
                    self._active[job_id].set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception as exc:  # noqa: BLE001 - surfaced to every waiter
                self.error = exc
            self._wake.wait(timeout=self.interval_s)
            self._wake.clear()
