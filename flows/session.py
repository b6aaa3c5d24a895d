"""A run's session inside the flow: its store (built once), its cancel token with every source that
sets it (SIGTERM/SIGINT, a cancel seen through the Prefect API, the CLI's Ctrl-C), and its execution
core (backend + one watcher), opened after the run row is stored."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from prefect.runtime import flow_run

from blocks.results_db import resolve_results_url
from flows.cancel_watch import watch_for_cancel
from scaling_matrix.adapters.store import ResultsStore
from scaling_matrix.execution import RunCore, open_core
from scaling_matrix.planning import RunPlan
from scaling_matrix.stop import CancelToken, stop_on_signals, token_for_run
from tasks.results import record_run


@dataclass(frozen=True)
class Session:
    """What the steps of one run share."""

    store: ResultsStore
    token: CancelToken
    core: RunCore
    flow_run_id: str

    @property
    def cancelled(self) -> bool:
        """Return True once the run was asked to stop."""
        return self.token.is_set()


@contextmanager
def run_session(run: RunPlan) -> Iterator[Session]:
    """Store the run (row, pending cells, provenance), then yield its session while its jobs may run."""
    store, token, flow_run_id = ResultsStore(resolve_results_url()), token_for_run(), str(flow_run.id or "")
    record_run(run, store, flow_run_id)
    with stop_on_signals(token), watch_for_cancel(flow_run_id, token), open_core(run.profile, store, token) as core:
        yield Session(store, token, core, flow_run_id)
