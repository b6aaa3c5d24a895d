"""Real-SLURM tier: SlurmClient + parsers + classify_slurm against the local single-node cluster.

Run ``sudo scripts/local-slurm.sh up`` first. Skipped without a cluster, failed under ``CI=true``.
Each test submits real batch jobs with ``sbatch`` and polls them with SlurmClient until terminal.
"""

from __future__ import annotations

import os
import subprocess
import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from scaling_matrix.adapters.slurm import SlurmClient
from scaling_matrix.outcome import FailureClass, Outcome, classify_slurm
from scaling_matrix.slurm import SACCT_FIELDS, JobStatus, SlurmState, parse_sacct, parse_scontrol_job
from tests.slurm.conftest import cluster_capped_by_qos

if TYPE_CHECKING:
    from conftest import RealSlurm

pytestmark = [pytest.mark.slurm, pytest.mark.timeout(240)]

OOM_LINE = ("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. "
            "GPU 0 has a total capacity of 79.15 GiB")


def _running(status: JobStatus) -> bool:
    return status.state is SlurmState.RUNNING or status.is_terminal


def _classify(status: JobStatus, log: str, **kwargs: bool) -> Outcome:
    return classify_slurm(status.state, status.exit_code, status.signal, log, False, **kwargs)


def test_exit_3_is_failed_with_exit_code_3_and_not_retried(real_slurm: RealSlurm) -> None:
    job_id, out = real_slurm.submit("exit3", "echo hi\nexit 3")
    status = real_slurm.wait(job_id)
    assert (status.state, status.exit_code, status.signal) == (SlurmState.FAILED, 3, 0)
    outcome = _classify(status, out.read_text())
    assert outcome.failure_class is FailureClass.UNKNOWN and "exit code 3" in outcome.reason
    assert not outcome.retryable
    # The poll (one squeue for every state) and the accounting record must tell the same story.
    polled = SlurmClient(real_slurm.runner, poll_accounting=False).statuses([job_id])[job_id]
    assert (polled.state, polled.exit_code, polled.source) == (SlurmState.FAILED, 3, "squeue")
    accounted = parse_sacct(subprocess.run(["sacct", "-P", "-n", "-o", ",".join(SACCT_FIELDS), "-j", job_id],
                                           capture_output=True, text=True, check=True).stdout)
    if job_id in accounted:  # with accounting
        assert (accounted[job_id].state, accounted[job_id].exit_code) == (SlurmState.FAILED, 3)


@pytest.mark.parametrize(("body", "expected"), [
    # the batch shell itself: ExitCode=0:9 everywhere
    ("kill -9 $$", {"sacct": (0, 9), "scontrol": (0, 9), "squeue": (0, 9)}),
    # srun exits 128+9 and the script with it: scontrol and squeue say 137:0, sacct prints statuses
    # >= 128 minus 128 (9:0) and the signal comes from the killed step's row (.0 0:9)
    ("srun bash -c 'kill -9 $$'", {"sacct": (9, 9), "scontrol": (137, 0), "squeue": (137, 0)}),
], ids=["batch-shell", "srun-task"])
def test_kill_9_is_reported_as_sigkill(real_slurm: RealSlurm, body: str,
                                       expected: dict[str, tuple[int, int]]) -> None:
    job_id, out = real_slurm.submit("kill9", body)
    status = real_slurm.wait(job_id)
    assert status.state is SlurmState.FAILED
    assert (status.exit_code, status.signal) == expected[status.source]
    outcome = _classify(status, out.read_text())
    assert outcome.failure_class is FailureClass.UNKNOWN and "SIGKILL" in outcome.reason
    assert not outcome.retryable


def test_oom_text_and_exit_1_is_oom(real_slurm: RealSlurm) -> None:
    job_id, out = real_slurm.submit("oom", f"echo '[rank0]: {OOM_LINE}' >&2\nexit 1")
    status = real_slurm.wait(job_id)
    assert (status.state, status.exit_code) == (SlurmState.FAILED, 1)
    outcome = _classify(status, out.read_text())
    assert outcome.failure_class is FailureClass.OOM and "CUDA out of memory" in outcome.reason


def test_scancel_of_running_job_is_cancelled(real_slurm: RealSlurm) -> None:
    job_id, out = real_slurm.submit("cancel", "echo started\nsleep 300")
    real_slurm.wait(job_id, until=_running)
    real_slurm.client.cancel([job_id])
    status = real_slurm.wait(job_id)
    assert status.state is SlurmState.CANCELLED
    assert _classify(status, out.read_text()).failure_class is FailureClass.CANCELLED
    assert _classify(status, "", cancelled_by_us=True).reason.startswith("cancelled by the orchestrator")


def test_time_limit_is_timeout(real_slurm: RealSlurm) -> None:
    """``--time=1`` (SLURM's minimum, 1 min) then, unless SLURM_TEST_NATURAL_TIMEOUT=1, EndTime pulled in.

    Note:
        slurmctld checks limits every 30 s, so a natural 1-minute limit ends the job 60-90 s in
        (71 s measured); moving EndTime to now+1 s hits the next check (<= ~30 s).
    """
    job_id, out = real_slurm.submit("timeout", "echo started\nsleep 120", "--time=1")
    real_slurm.wait(job_id, until=_running)
    if os.environ.get("SLURM_TEST_NATURAL_TIMEOUT") != "1":
        soon = (datetime.now() + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S")
        subprocess.run(["scontrol", "update", f"JobId={job_id}", f"EndTime={soon}"], check=True,
                       capture_output=True, timeout=30)
    status = real_slurm.wait(job_id, timeout_s=150, interval_s=1.0)
    assert status.state is SlurmState.TIMEOUT
    log = out.read_text()
    assert "DUE TO TIME LIMIT" in log
    assert _classify(status, log).failure_class is FailureClass.TIME_LIMIT


def test_one_query_per_poll_for_many_jobs_and_test_only(real_slurm: RealSlurm) -> None:
    ids = [real_slurm.submit(f"many{i}", f"exit {i}")[0] for i in range(3)]
    real_slurm.client.statuses(ids)  # first poll may detect accounting
    real_slurm.runner.calls.clear()
    deadline = time.monotonic() + 60
    while True:
        got = real_slurm.client.statuses(ids)
        if all(s.is_terminal for s in got.values()):
            break
        assert time.monotonic() < deadline, got
        time.sleep(0.5)
    polls = [c for c in real_slurm.runner.calls if c[0] in {"sacct", "squeue"}]
    extra = [c for c in real_slurm.runner.calls if c[0] == "scontrol"]
    assert len(extra) <= len(polls) and len(real_slurm.runner.calls) == len(polls) + len(extra)
    if real_slurm.client.accounting:
        assert not extra  # with accounting: exactly one sacct call per poll
    assert [got[i].exit_code for i in ids] == [0, 1, 2]
    assert [got[i].state for i in ids] == [SlurmState.COMPLETED, SlurmState.FAILED, SlurmState.FAILED]
    script = real_slurm.workdir / "many0.sbatch"
    assert real_slurm.client.test_only(script, extra_args=["--gpus-per-node=8"])[0]
    ok, message = real_slurm.client.test_only(script, extra_args=["--gpus-per-node=9"])
    refusal = "QOSGrpGRES" if cluster_capped_by_qos() else "Requested node configuration is not available"
    assert not ok and refusal in message


def _resume(node: str) -> None:
    """Return once ``node`` is back in service (RESUME is refused when it already returned)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state = subprocess.run(["sinfo", "-h", "-N", "-n", node, "-o", "%T"], capture_output=True,
                               text=True, check=False).stdout.strip()
        if state.startswith(("idle", "mixed", "allocated", "completing")) and "drain" not in state:
            return
        subprocess.run(["scontrol", "update", f"NodeName={node}", "State=RESUME"], capture_output=True, check=False)
        time.sleep(1)
    raise AssertionError(f"node {node} did not come back: run `sudo scripts/local-slurm.sh up`")


def _other_jobs(node: str, mine: str) -> list[str]:
    """Return ids of other jobs running on ``node`` (setting it DOWN would kill them)."""
    out = subprocess.run(["squeue", "-h", "-w", node, "-o", "%i"], capture_output=True, text=True,
                         check=False).stdout
    return [j for j in out.split() if j != mine]


@pytest.mark.skipif(os.geteuid() != 0, reason="setting a node DOWN needs a SLURM admin (root)")
def test_node_set_down_mid_run_is_node_fail(real_slurm: RealSlurm, ci: bool) -> None:
    """``--no-requeue``: with SLURM's default Requeue=1 the job would go back to PENDING instead.

    Note:
        Outside CI the test waits up to 60 s for other users' jobs on the node to finish, then
        skips rather than killing them.
    """
    job_id, out = real_slurm.submit("nodefail", "echo started\nsleep 300", "--no-requeue")
    running = real_slurm.wait(job_id, until=_running)
    node = running.node_list or subprocess.run(["hostname", "-s"], capture_output=True, text=True).stdout.strip()
    deadline = time.monotonic() + 60
    while not ci and (others := _other_jobs(node, job_id)):
        if time.monotonic() > deadline:
            pytest.skip(f"jobs {others} of others run on {node}; setting it DOWN would kill them")
        time.sleep(2)
    try:
        subprocess.run(["scontrol", "update", f"NodeName={node}", "State=DOWN", "Reason=test"], check=True,
                       capture_output=True, timeout=30)
        status = real_slurm.wait(job_id)
    finally:
        _resume(node)
    assert status.state is SlurmState.NODE_FAIL
    outcome = _classify(status, out.read_text())
    assert outcome.failure_class is FailureClass.NODE_FAIL and outcome.retryable
    shown = subprocess.run(["scontrol", "show", "job", job_id], capture_output=True, text=True, check=True).stdout
    assert parse_scontrol_job(shown).reason == "NodeDown"


def test_find_by_comment_while_running_and_after_the_end(real_slurm: RealSlurm) -> None:
    comment = f"scaling-matrix:find-{os.getpid()}-{time.time_ns()}:cell:1"
    job_id, _ = real_slurm.submit("comment", "sleep 2", f"--comment={comment}")
    real_slurm.wait(job_id, until=_running)
    assert real_slurm.client.find_by_comment(comment) == job_id
    real_slurm.wait(job_id)
    assert real_slurm.client.find_by_comment(comment) == job_id  # scontrol keeps it for MinJobAge
    assert real_slurm.client.find_by_comment(comment + "-other") is None
    if real_slurm.client.accounting:  # the accounting path, used once the controller forgot the job
        from scaling_matrix.slurm import job_ids_with_comment

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            sacct = subprocess.run(["sacct", "-X", "-n", "-P", "-o", "JobID,Comment", "-S", "now-1hours"],
                                   capture_output=True, text=True, check=True).stdout
            if job_ids_with_comment(sacct, comment):
                break
            time.sleep(1)
        assert job_ids_with_comment(sacct, comment) == [job_id], "AccountingStoreFlags=job_comment missing?"
