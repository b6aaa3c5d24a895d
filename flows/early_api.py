"""Start Prefect's temporary API server early, beside the CLI's own work (``scaling-matrix run`` only).

Without ``PREFECT_API_URL`` a flow call starts Prefect's temporary server (a uvicorn subprocess) on
its first API call and waits until it answers: ~3 s on the 2-core machine, after the CLI has
imported the flow (~2 s). Starting the same server (Prefect's ``SubprocessASGIServer`` singleton,
which the flow's client then reuses) in a thread while the flow module is imported overlaps the
two (BENCHMARKS.md §9). The flow starts only after :func:`wait_for_api` returns, so it never talks
to a server that is not up yet; if the early start failed, the flow's client starts it itself and
reports the failure in Prefect's words.
"""

from __future__ import annotations

import threading


def _start() -> None:
    from prefect.server.api.server import SubprocessASGIServer

    try:
        SubprocessASGIServer().start()
    except Exception:  # noqa: BLE001 - the flow's own client retries and reports it
        pass


def start_api_early() -> threading.Thread | None:
    """Start the temporary server in a background thread when the flow will need one; return the
    thread (None when ``PREFECT_API_URL`` names a server or temporary servers are off)."""
    from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_ENABLED

    if PREFECT_API_URL.value() or not PREFECT_SERVER_EPHEMERAL_ENABLED.value():  # as Prefect's get_client decides
        return None
    thread = threading.Thread(target=_start, name="prefect-temporary-api", daemon=True)
    thread.start()
    return thread


def wait_for_api(thread: threading.Thread | None) -> None:
    """Return once the early start has finished (the server answers, or the flow will start it)."""
    if thread is not None:
        thread.join()
