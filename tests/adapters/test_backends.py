"""One contract for every backend (the ReFrame way): submit, poll all jobs in one query, cancel, collect.

Run against the local backend here and the real SLURM (``slurm`` marker; skipped without one, fails
under CI=true). A job is a plain ``bash -c`` body, so what is tested is the backend, not a workload.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from scaling_matrix.adapters.outputs import read_log_text
from scaling_matrix.adapters.slurm import SlurmClient
from scaling_matrix.backends.base import Backend, Handle, JobSpec, JobState
from scaling_matrix.backends.local import LocalBackend
from scaling_matrix.backends.slurm import SlurmBackend
from scaling_matrix.config.loading import load_profile
from scaling_matrix.layout import Layout
from scaling_matrix.render.sbatch import JobRequest, render_sbatch
from tests.slurm.conftest import RecordingRunner

ONE_RANK = Layout(1, 1)


def _spec(kind: str, folder: Path, body: str, layout: Layout = ONE_RANK) -> JobSpec:
    argv = ["bash", "-c", body]
    script = None
    if kind == "slurm":
        req = JobRequest(folder.name, layout.nodes, layout.devices, 0, str(folder), argv)
        script = render_sbatch(req, load_profile("slurm-local"))
    return JobSpec(folder.name, argv, layout, folder, {}, script, comment=f"contract-{folder.name}", timeout_s=120)


@pytest.fixture(params=["local", pytest.param("slurm", marks=pytest.mark.slurm)])
def backend(request: pytest.FixtureRequest) -> Iterator[tuple[str, Backend, RecordingRunner | None]]:
    if request.param == "local":
        yield "local", LocalBackend(capacity=2, poll_interval_s=0.05), None
        return
    runner = RecordingRunner()
    be = SlurmBackend(SlurmClient(runner), poll_interval_s=0.5)
    submitted: list[Handle] = []
    submit = be.submit

    def submit_and_remember(spec: JobSpec) -> Handle:
        submitted.append(submit(spec))
        return submitted[-1]

    be.submit = submit_and_remember  # type: ignore[method-assign]
    yield "slurm", be, runner
    be.cancel(submitted)  # a test that failed on a busy cluster must not leave its jobs queued there


def _wait_done(backend: Backend, handles: list[Handle], timeout_s: float = 120) -> dict[str, JobState]:
    deadline = time.monotonic() + timeout_s
    while True:
        states = backend.poll([h.id for h in handles])
        if all(s is JobState.DONE for s in states.values()) or time.monotonic() > deadline:
            return states
        time.sleep(backend.poll_interval_s)


def test_exit_codes_and_output_come_back_and_one_poll_covers_every_job(backend, tmp_path: Path) -> None:
    kind, be, runner = backend
    handles = [be.submit(_spec(kind, tmp_path / f"job{i}", f"echo hello-{i}; exit {i}")) for i in range(3)]
    assert len({h.id for h in handles}) == 3 and all(h.job_id for h in handles) == (kind == "slurm")
    if runner is not None:
        runner.calls.clear()
    states = _wait_done(be, handles)
    assert set(states.values()) == {JobState.DONE}
    if runner is not None:  # every poll was ONE scheduler query for all three jobs (plus scontrol at most)
        queries = [c for c in runner.calls if c[0] in ("sacct", "squeue")]
        joined = ",".join(h.id for h in handles)
        assert queries and all(joined in q for q in queries)  # "-j a,b,c": every job in each query
        assert len(runner.calls) <= 2 * len(queries)  # at most one scontrol beside each squeue
    ends = [be.collect(h) for h in handles]
    assert [e.returncode for e in ends] == [0, 1, 2]
    assert [f"hello-{i}" in read_log_text(*e.log_paths) for i, e in enumerate(ends)] == [True] * 3
    assert not any(e.cancelled for e in ends)
    assert (ends[0].scheduler is not None) == (kind == "slurm")


def test_cancel_stops_a_running_and_a_waiting_job(backend, tmp_path: Path) -> None:
    kind, be, _ = backend
    handles = [be.submit(_spec(kind, tmp_path / f"sleep{i}", "sleep 300")) for i in range(3)]  # > 2 cores: one waits
    deadline = time.monotonic() + 60
    while JobState.RUNNING not in be.poll([h.id for h in handles]).values():
        assert time.monotonic() < deadline, "no job started"
        time.sleep(0.2)
    t0 = time.monotonic()
    be.cancel(handles)
    assert set(_wait_done(be, handles, timeout_s=30).values()) == {JobState.DONE}
    assert time.monotonic() - t0 < 15
    ends = [be.collect(h, cancelled=True) for h in handles]
    assert all(e.cancelled for e in ends)


def test_two_node_layout_numbers_ranks_per_node(tmp_path: Path) -> None:
    """Local: a 2 x 1 job is two ranks, each rank 0 of its "node" (NODE_RANK 0 and 1)."""
    be = LocalBackend(capacity=2, poll_interval_s=0.05)
    h = be.submit(_spec("local", tmp_path / "n2", 'echo "rank=$RANK local=$LOCAL_RANK node=$NODE_RANK '
                                                   'world=$WORLD_SIZE per_node=$LOCAL_WORLD_SIZE"', Layout(2, 1)))
    _wait_done(be, [h])
    lines = sorted(ln for ln in read_log_text(*be.collect(h).log_paths).splitlines() if ln.startswith("rank="))
    assert lines == ["rank=0 local=0 node=0 world=2 per_node=1", "rank=1 local=0 node=1 world=2 per_node=1"]


def test_local_capacity_queues_jobs_instead_of_sharing_cores(tmp_path: Path) -> None:
    be = LocalBackend(capacity=2, poll_interval_s=0.05)
    first = be.submit(_spec("local", tmp_path / "a", "sleep 1", Layout(1, 2)))
    second = be.submit(_spec("local", tmp_path / "b", "true"))
    time.sleep(0.3)
    assert be.poll([first.id, second.id]) == {first.id: JobState.RUNNING, second.id: JobState.QUEUED}
    _wait_done(be, [first, second])
    a, b = be.collect(first), be.collect(second)
    assert b.started_at is not None and a.finished_at is not None and b.started_at >= a.finished_at
