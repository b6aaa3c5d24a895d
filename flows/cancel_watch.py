"""Notice a cancel requested through the Prefect API while the flow runs in this process.

``prefect flow-run cancel`` (or the UI's Cancel) only marks the run CANCELLING; a served or
worker-run deployment is then killed by its runner, but a flow started by ``scaling-matrix run``
against a server has nobody to kill it. This watcher polls the run's state and sets the
process's stop event, so every entry point ends through the same graceful path.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from prefect.client.orchestration import get_client

log = logging.getLogger(__name__)


def _cancel_requested(flow_run_id: str) -> bool:
    """Return True when the API shows the flow run Cancelling or Cancelled."""
    with get_client(sync_client=True) as client:
        state = client.read_flow_run(flow_run_id).state
    return state is not None and (state.is_cancelling() or state.is_cancelled())


def _poll(flow_run_id: str, stop: threading.Event, done: threading.Event, interval_s: float) -> None:
    while not done.wait(interval_s):
        try:
            if _cancel_requested(flow_run_id):
                stop.set()
                return
        except Exception as exc:  # noqa: BLE001 - the API may be briefly unreachable; keep watching
            log.debug("cancel watch: cannot read flow run %s: %s", flow_run_id, exc)


@contextmanager
def watch_for_cancel(flow_run_id: str | None, stop: threading.Event, interval_s: float = 1.0) -> Iterator[None]:
    """Set ``stop`` once flow run ``flow_run_id`` is marked Cancelling/Cancelled, while in the block."""
    if not flow_run_id:
        yield
        return
    done = threading.Event()
    thread = threading.Thread(target=_poll, args=(flow_run_id, stop, done, interval_s),
                              name="cancel-watch", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join(timeout=interval_s + 5)
