"""Wait for the Prefect API before the steps of a flow that cannot run without it.

Tasks keep running while the API is away (a server restart): their states travel as events. Creating a
subflow run cannot: a client that has not yet connected gives up on the first refused connection. So the
``scaling-matrix`` flow waits here, bounded, before its analysis subflow, instead of failing a run whose
cells all finished (RELIABILITY.md "Faults": Prefect server restarted while cells run).
"""

from __future__ import annotations

import logging
import time

from prefect import get_run_logger
from prefect.client.orchestration import get_client
from prefect.exceptions import MissingContextError

#: How long a run waits for an unreachable Prefect API before it fails (a restart takes seconds).
API_WAIT_S = 300.0


class PrefectApiUnavailable(RuntimeError):
    """The Prefect API stayed unreachable for longer than the flow waits."""


def api_problem() -> Exception | None:
    """Return the error of one health check of the configured Prefect API (None: it answered)."""
    with get_client(sync_client=True) as client:
        return client.api_healthcheck()


def _logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    """Return the flow run's logger (its lines reach the UI), or this module's outside a run."""
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger(__name__)


def wait_for_api(timeout_s: float = API_WAIT_S, interval_s: float = 1.0) -> float:
    """Return the seconds until the Prefect API answered (a refused connection takes the client's transport
    a few retries, ~3 s, to report); raise :class:`PrefectApiUnavailable` naming the last error after
    ``timeout_s``."""
    start = time.monotonic()
    problem = api_problem()
    if problem is None:
        return _answered(time.monotonic() - start)
    _logger().warning(f"Prefect API unreachable ({type(problem).__name__}); waiting up to "
                      f"{timeout_s:.0f} s for it before the analysis")
    while (problem := api_problem()) is not None:
        if time.monotonic() - start > timeout_s:
            raise PrefectApiUnavailable(f"the Prefect API stayed unreachable for {timeout_s:.0f} s "
                                        f"({type(problem).__name__}: {problem}); the cells are stored: "
                                        "`scaling-matrix report --run <run id>` shows them")
        time.sleep(interval_s)
    return _answered(time.monotonic() - start)


def _answered(waited: float) -> float:
    """Log a wait that a user would notice (over 1 s: the API was away); return it."""
    if waited > 1.0:
        _logger().info(f"Prefect API answered after {waited:.1f} s")
    return waited


__all__ = ["API_WAIT_S", "PrefectApiUnavailable", "api_problem", "wait_for_api"]
