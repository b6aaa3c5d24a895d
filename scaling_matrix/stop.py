"""A run's stop request (its cancel token) and the signals that raise it. Light: no I/O, no Prefect.

Every run has its own :class:`CancelToken`, made when the run starts and passed down to every
job wait of the run; whatever stops the run sets it (Ctrl-C or SIGTERM, a cancel seen through the
Prefect API), and each waiting cell then ``scancel``s its job or kills its ranks and is stored
cancelled. No module-level state: a token lives and dies with its run.

The CLI must take Ctrl-C before the run (and its Prefect machinery) exists, so it makes the token
itself and hands it to the run it starts with :func:`hand_over`; :func:`token_for_run` takes the
token handed to this call (a context variable, per thread and per call, not per process), else a
fresh one. A deployment's flow run gets a fresh token: its runner's SIGTERM reaches
:func:`stop_on_signals`.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any


class CancelToken(threading.Event):
    """One run's stop request: set once, seen by every launch and job wait of that run.

    ``forced`` marks a second Ctrl-C: the next signal interrupts at once instead of stopping gracefully.
    """

    forced = False

    def force(self) -> None:
        """Set the token and ask for the hard way: the next signal runs the previous handler."""
        self.forced = True
        self.set()


_HANDED: ContextVar[CancelToken | None] = ContextVar("scaling_matrix_handed_token", default=None)


@contextmanager
def hand_over(token: CancelToken) -> Iterator[CancelToken]:
    """Inside the block, the run started by this call stops when ``token`` is set (see :func:`token_for_run`)."""
    reset = _HANDED.set(token)
    try:
        yield token
    finally:
        _HANDED.reset(reset)


def token_for_run() -> CancelToken:
    """Return the cancel token handed to this call by :func:`hand_over`, else a new one for this run."""
    return _HANDED.get() or CancelToken()


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """Inside the block, SIGTERM and SIGINT set ``stop`` (a graceful cancel) instead of killing at once.

    The run then ends within seconds: watchers return, jobs are ``scancel``ed, cells stored. Ctrl-C
    twice (a SIGINT after an earlier signal, any signal after a SIGINT, or a token ``forced`` by the
    CLI's second Ctrl-C) runs the previous handler: it interrupts at once. SIGTERMs alone never do:
    a runner may deliver its SIGTERM after the run already saw the cancel through the API, or twice
    (duplicate cancel events), and a batch system escalates to SIGKILL on its own. The previous
    handlers are restored on exit. Outside the main thread this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    seen: list[int] = []

    def handler(sig: int, frame: Any) -> None:
        hard = getattr(stop, "forced", False) or (bool(seen) and (sig == signal.SIGINT or signal.SIGINT in seen))
        seen.append(sig)
        if not hard:
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


def block_ctrl_c() -> set[int] | None:
    """Block SIGINT in this (main) thread and every thread started from now on; return the previous
    mask to restore when no run follows (None outside the main thread). Call it first thing: a thread
    started earlier (numpy starts one at import) would take Ctrl-C for the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})


def unblock_ctrl_c(previous: set[int] | None) -> None:
    """Restore the signal mask :func:`block_ctrl_c` returned (no run was started after all)."""
    if previous is not None:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def ctrl_c_sets(stop: CancelToken) -> None:
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
                stop.force()
                os.kill(os.getpid(), signal.SIGTERM)
            stop.set()

    threading.Thread(target=wait_for_ctrl_c, name="ctrl-c", daemon=True).start()


__all__ = ["CancelToken", "block_ctrl_c", "ctrl_c_sets", "hand_over", "stop_on_signals", "token_for_run",
           "unblock_ctrl_c"]
