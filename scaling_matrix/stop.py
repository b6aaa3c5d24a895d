"""The process's stop request and the signals that raise it. Light: no I/O, no Prefect, no threads.

``CANCEL_ALL`` is set by whatever stops a run in this process (Ctrl-C or SIGTERM, a cancel seen
through the Prefect API, a cancellation hook); every launch and job wait of the run polls it,
``scancel``s its job or kills its ranks, and stores the cell cancelled.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

#: Set to stop every launch of the current run in this process (cleared when a flow run starts).
CANCEL_ALL = threading.Event()


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """Inside the block, SIGTERM and SIGINT set ``stop`` (a graceful cancel) instead of killing at once.

    The run then ends within seconds: watchers return, jobs are ``scancel``ed, cells stored. A
    second signal runs the previous handler (Ctrl-C twice interrupts at once). The previous
    handlers are restored on exit. Outside the main thread this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}

    def handler(sig: int, frame: Any) -> None:
        if not stop.is_set():
            stop.set()
            return
        before = previous[signal.Signals(sig)]
        if callable(before):
            before(sig, frame)
        else:
            raise SystemExit(128 + sig)

    for s in previous:
        signal.signal(s, handler)
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def ctrl_c_sets(stop: threading.Event) -> None:
    """Make Ctrl-C set ``stop`` without reaching this process's helper processes; call it first thing.

    A terminal's Ctrl-C sends SIGINT to the whole foreground process group, which includes the
    ephemeral Prefect server this process starts: it would shut down and leave the run unable to
    report its Cancelled state. So SIGINT is blocked here (children inherit the blocked mask and
    never see it) and a thread takes it with ``sigwait``: the first sets ``stop``, a second sends
    this process SIGTERM. Main thread only; call before any other thread starts (threads started
    earlier would take the signal for the main thread, which may sleep in a wait for long).
    """
    if threading.current_thread() is not threading.main_thread():
        return
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})

    def wait_for_ctrl_c() -> None:
        while True:
            signal.sigwait({signal.SIGINT})
            if stop.is_set():  # second Ctrl-C: the hard way (SIGTERM reaches the main thread)
                os.kill(os.getpid(), signal.SIGTERM)
            stop.set()

    threading.Thread(target=wait_for_ctrl_c, name="ctrl-c", daemon=True).start()


__all__ = ["CANCEL_ALL", "ctrl_c_sets", "stop_on_signals"]
