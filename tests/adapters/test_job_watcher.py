"""JobWatcher: one scheduler query per poll for every job of a run; waiters released on terminal states."""

from __future__ import annotations

import threading
import time

from scaling_matrix.backends.watcher import JobWatcher
from scaling_matrix.slurm.states import SlurmState
from scaling_matrix.slurm.status import JobStatus


class ScriptedScheduler:
    """Stand-in status query: jobs finish after a number of polls; records every query."""

    def __init__(self, finish_after: dict[str, int]) -> None:
        self.finish_after = finish_after
        self.queries: list[list[str]] = []

    def __call__(self, ids: list[str]) -> dict[str, JobStatus]:
        self.queries.append(sorted(ids))
        n = len(self.queries)
        return {i: JobStatus(i, SlurmState.COMPLETED if n >= self.finish_after[i] else SlurmState.RUNNING,
                             exit_code=0, signal=0) for i in ids}


def test_one_query_per_poll_for_all_jobs() -> None:
    sched = ScriptedScheduler({"1": 2, "2": 3, "3": 3})
    results: dict[str, JobStatus | None] = {}
    with JobWatcher(sched, interval_s=0.05) as watcher:
        threads = [threading.Thread(target=lambda j=j: results.__setitem__(j, watcher.wait(j))) for j in "123"]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=10)
    assert {j: s.state for j, s in results.items()} == {j: SlurmState.COMPLETED for j in "123"}
    assert all(len(q) <= 3 for q in sched.queries)  # one call covers every active job
    assert ["1", "2", "3"] in sched.queries
    assert all("1" not in q for q in sched.queries[sched.queries.index(["1", "2", "3"]) + 2:])


def test_cancel_and_errors_release_waiters() -> None:
    sched = ScriptedScheduler({"9": 10**6})
    cancel = threading.Event()
    with JobWatcher(sched, interval_s=0.05) as watcher:
        threading.Timer(0.3, cancel.set).start()
        t0 = time.monotonic()
        assert watcher.wait("9", cancel=cancel) is None
        assert time.monotonic() - t0 < 5
        assert watcher.last("9").state is SlurmState.RUNNING

    def broken(ids: list[str]) -> dict[str, JobStatus]:
        raise RuntimeError("sacct down")

    with JobWatcher(broken, interval_s=0.05) as watcher:
        try:
            watcher.wait("1", timeout_s=5)
        except RuntimeError as exc:
            assert "sacct down" in str(exc)
        else:
            raise AssertionError("the watcher's query error must reach the waiter")
