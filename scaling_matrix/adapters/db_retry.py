"""Retry a results-database call through a busy SQLite writer lock or a dropped PostgreSQL connection.

A run's rows must not be lost because another process held SQLite's writer lock longer than the
driver's busy timeout (5 s), or because PostgreSQL dropped the connection (``pg_terminate_backend``,
a server restart, a failover). Every store call is a short, idempotent transaction (insert-if-absent
or upsert by key), so it is simply run again after a back-off: the pool's pre-ping replaces a dead
connection, and a transaction that never committed is rolled back by the failure itself.
Anything else (a constraint, a wrong column, an unknown database) fails at once.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from scaling_matrix.config.secrets import redact

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

#: Driver words of a lock that will be released, or of a connection that a new one replaces.
TRANSIENT_WORDS = ("database is locked", "database table is locked", "database is busy",
                   "terminating connection", "server closed the connection", "connection already closed",
                   "connection has been closed", "could not connect to server", "connection refused",
                   "the database system is shutting down", "the database system is starting up",
                   "could not receive data from server", "no connection to the server")
#: Seconds a call keeps retrying before the error is raised (a writer lock held longer is a real problem).
BUDGET_S = 120.0
FIRST_DELAY_S, MAX_DELAY_S = 0.1, 5.0


def is_transient(exc: BaseException) -> bool:
    """Return True when ``exc`` is a busy lock or a lost connection (worth the same call again)."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if not isinstance(exc, OperationalError | InterfaceError):
        return False
    text = str(getattr(exc, "orig", None) or exc).lower()
    return any(word in text for word in TRANSIENT_WORDS)


def retried(fn: Callable[P, R]) -> Callable[P, R]:
    """Return ``fn`` retried with exponential back-off while it fails transiently, for up to :data:`BUDGET_S`."""

    @functools.wraps(fn)
    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        deadline, delay, tries = time.monotonic() + BUDGET_S, FIRST_DELAY_S, 0
        while True:
            try:
                result = fn(*args, **kwargs)
            except (OperationalError, InterfaceError, DBAPIError) as exc:
                tries += 1
                if not is_transient(exc) or time.monotonic() + delay > deadline:
                    raise
                first = str(getattr(exc, "orig", None) or exc).strip().splitlines()[:1]
                log.warning("results database %s: %s; retry %d in %.1f s", fn.__name__,
                            redact(first[0] if first else type(exc).__name__)[:200], tries, delay)
                time.sleep(delay)
                delay = min(delay * 2, MAX_DELAY_S)
                continue
            if tries:
                log.warning("results database %s succeeded after %d retries", fn.__name__, tries)
            return result

    return call


__all__ = ["BUDGET_S", "is_transient", "retried"]
