"""No silent cap: ``run_cells`` starts every cell at once; only ``slurm.max_jobs_in_flight`` bounds it.

A recording backend (a named test stand-in for SLURM: jobs end after a few polls) counts how many
jobs were submitted and not yet collected at any moment; the watcher polls all of them in one call.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from prefect import flow

from scaling_matrix.adapters.store import ResultsStore
from scaling_matrix.backends.base import Handle, JobSpec, JobState, RunEnd
from scaling_matrix.config.loading import load_matrix, load_profile
from scaling_matrix.execution import open_core
from scaling_matrix.planning import plan_run
from scaling_matrix.records import RunInfo
from scaling_matrix.stop import CancelToken
from tasks.finetune import run_cells
from tests.prefect.test_slurm_flow import FIX


class RecordingBackend:
    """Jobs end after ``polls`` polls of their own, once one poll covered ``hold`` jobs (or after ``hold_s``:
    on a loaded machine the first jobs must not end before the last cell's thread submits); records the most
    jobs in flight and every poll's ids."""

    name, reattaches, enforces_timeout, poll_interval_s = "recording", False, False, 0.05

    def __init__(self, hold: int, polls: int = 3, hold_s: float = 20.0) -> None:
        self.polls, self.hold, self._lock = polls, hold, threading.Lock()
        self._release_at, self._full_poll = time.monotonic() + hold_s, False
        self.in_flight, self.most_in_flight, self.queries = 0, 0, []
        self._seen: dict[str, int] = {}

    def submit(self, spec: JobSpec) -> Handle:
        with self._lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            job = f"job-{len(self._seen) + 1}"
            self._seen[job] = 0
        return Handle(job, spec, job)

    def poll(self, ids: list[str]) -> dict[str, JobState]:
        with self._lock:
            self.queries.append(sorted(ids))
            for i in ids:
                self._seen[i] += 1
            self._full_poll = self._full_poll or len(ids) >= self.hold
            held = not self._full_poll and time.monotonic() < self._release_at
            return {i: JobState.DONE if self._seen[i] >= self.polls and not held else JobState.RUNNING for i in ids}

    def cancel(self, handles: Iterable[Handle]) -> None:
        pass

    def collect(self, handle: Handle, cancelled: bool = False) -> RunEnd:
        with self._lock:
            self.in_flight -= 1
        return RunEnd((), handle.spec.workdir / "memory", 0, cancelled=cancelled)

    def find(self, comment: str) -> str | None:
        return None

    def attach(self, job_id: str, spec: JobSpec) -> Handle:
        raise AssertionError("never re-attached")


@pytest.mark.parametrize(("limit", "most"), [(None, 12), (3, 3)])
def test_every_cell_in_flight_at_once_unless_a_limit_is_set(limit: int | None, most: int, scaling_home: Path,
                                                            tmp_path: Path) -> None:
    profile = tmp_path / "p.yaml"
    profile.write_text(yaml.safe_dump({"name": "rec", "launcher": "slurm", "workload": "tiny", "device": "cpu",
                                       "capacity_gpus": 8, "retries": 0,
                                       "slurm": {"partition": "gpu", "max_jobs_in_flight": limit}}))
    prof = load_profile(str(profile))
    run = plan_run(load_matrix(str(FIX / "matrices" / "forty.yaml"), repeats=3), prof, "inflight")
    store = ResultsStore(f"sqlite:///{tmp_path / 'r.db'}")
    store.create_run(RunInfo("inflight", "forty", prof, "t", None, datetime.now(UTC)))
    backend = RecordingBackend(hold=most)  # a cap below `most` never reaches it: jobs end after hold_s

    @flow
    def fan_out() -> int:
        with open_core(prof, store, CancelToken(), backend) as core:
            return len(run_cells(run.plans, core, prof))

    assert fan_out() == 12
    assert backend.most_in_flight == most  # default: all 12 cells' jobs at once; with a limit, never more
    assert max(len(q) for q in backend.queries) == most  # one poll covered every job in flight
    assert len(store.attempts("inflight")) == 12
