"""SlurmClient against a FakeRunner that speaks real SLURM text; assertions are on recorded argv."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from scaling_matrix.adapters.runner import FakeRunner
from scaling_matrix.adapters.slurm import SlurmClient
from scaling_matrix.errors import SchedulerParseError, SubmissionError
from scaling_matrix.adapters.slurm import ACCOUNTING_WINDOW
from scaling_matrix.slurm import SACCT_FIELDS, SlurmState
from scaling_matrix.slurm.squeue import SQUEUE_ALL_FORMAT

FIELDS = ",".join(SACCT_FIELDS)
T = "2026-11-22T20:33:28"
SQUEUE = ("squeue", "-h", "-t", "all", "-O", SQUEUE_ALL_FORMAT, "-j")
SACCT = ("sacct", "-P", "-n", "-o", FIELDS, "-S", ACCOUNTING_WINDOW, "-j")


def wait_status(code: str) -> int:
    """Return SLURM's ``status:signal`` as the raw wait status squeue's exit_code prints."""
    status, sig = (int(x) for x in code.split(":"))
    return status << 8 | sig


@dataclass
class FakeSlurm:
    """A stateful stand-in for sbatch/sacct/squeue/scontrol/scancel printing recorded formats."""

    accounting: bool = True
    jobs: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> (state, exit code)
    purged: set[str] = field(default_factory=set)                    # gone from slurmctld memory
    fail_next: list[tuple[int, str]] = field(default_factory=list)   # queued (rc, stderr) answers
    next_id: int = 100
    envs: list[Mapping[str, str]] = field(default_factory=list)

    def __call__(self, argv: tuple[str, ...], env: Mapping[str, str]) -> tuple[int, str, str]:
        self.envs.append(env)
        if self.fail_next:
            rc, err = self.fail_next.pop(0)
            return rc, "", err
        return getattr(self, argv[0])(argv)

    def sbatch(self, argv: tuple[str, ...]) -> tuple[int, str, str]:
        if "--test-only" in argv:
            if "--gpus-per-node=9" in argv:
                return 1, "", "allocation failure: Requested node configuration is not available\n"
            return 0, "", f"sbatch: Job {self.next_id} to start at {T} using 1 processors on nodes vm in partition gpu"
        job_id, self.next_id = str(self.next_id), self.next_id + 1
        self.jobs[job_id] = ("PENDING", "0:0")
        return 0, f"{job_id}\n", ""

    def sacct(self, argv: tuple[str, ...]) -> tuple[int, str, str]:
        if not self.accounting:
            return 1, "", "Slurm accounting storage is disabled\n"
        assert argv[:-1] == SACCT
        rows = []
        for job_id in argv[argv.index("-j") + 1].split(","):
            if job_id in self.jobs:
                state, code = self.jobs[job_id]
                rows.append(f"{job_id}|wrap|{state}|{code}|00:00:02|{T}|{T}|vm|{T}|gpu")
                rows.append(f"{job_id}.batch|batch|{state.split()[0]}|{code}|00:00:02|{T}|{T}|vm|{T}|")
        return 0, "".join(r + "\n" for r in rows), ""

    def squeue(self, argv: tuple[str, ...]) -> tuple[int, str, str]:
        assert argv[:-1] == SQUEUE
        ids = argv[-1].split(",")
        known = [i for i in ids if i in self.jobs and i not in self.purged]
        if not known and len(ids) == 1:  # one id: slurm_load_job(), which refuses an unknown id
            return 1, "", "slurm_load_jobs error: Invalid job id specified\n"
        return 0, "".join(f"{i}|{self.jobs[i][0]}|{wait_status(self.jobs[i][1])}|0:02|vm|gpu|{T}|{T}|{T}|0|None|\n"
                          for i in known), ""

    def scontrol(self, argv: tuple[str, ...]) -> tuple[int, str, str]:
        ids = list(argv[3:]) or [i for i in self.jobs if i not in self.purged]
        shown = [i for i in ids if i in self.jobs and i not in self.purged]
        if not shown:
            return 1, "", "slurm_load_jobs error: Invalid job id specified\n"
        return 0, "\n".join(self._record(i) for i in shown), ""

    def _record(self, job_id: str) -> str:
        state, code = self.jobs[job_id]
        return (f"JobId={job_id} JobName=wrap\n   JobState={state} Reason=None Dependency=(null)\n"
                f"   Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 ExitCode={code}\n"
                f"   RunTime=00:00:02 TimeLimit=UNLIMITED TimeMin=N/A\n   SubmitTime={T} EligibleTime={T}\n"
                f"   StartTime={T} EndTime={T} Deadline=N/A\n   Partition=gpu AllocNode:Sid=localhost:2045\n"
                f"   NodeList=vm\n   BatchHost=vm\n")

    def scancel(self, argv: tuple[str, ...]) -> tuple[int, str, str]:
        for job_id in argv[1:]:
            if job_id in self.jobs and SlurmState.parse(self.jobs[job_id][0]).is_active:
                self.jobs[job_id] = ("CANCELLED by 0", "0:0")
        return 0, "", ""


def make(fake: FakeSlurm, poll_accounting: bool | None = None, **kwargs: int) -> tuple[SlurmClient, FakeRunner]:
    runner = FakeRunner(fake)
    return SlurmClient(runner, poll_accounting, **kwargs), runner


def test_submit_returns_job_id_and_records_argv(tmp_path: Path) -> None:
    fake = FakeSlurm()
    client, runner = make(fake)
    job_id = client.submit(tmp_path / "cell.sbatch", cwd=tmp_path, env={"HF_HOME": "/x"},
                           extra_args=["--job-name=llama/lora/g4", "--no-requeue"])
    assert job_id == "100"
    assert runner.calls == [("sbatch", "--parsable", "--job-name=llama/lora/g4", "--no-requeue",
                             str(tmp_path / "cell.sbatch"))]
    assert fake.envs[-1] == {"HF_HOME": "/x"}


def test_submit_failure_raises_submission_error_with_argv_and_stderr(tmp_path: Path) -> None:
    fake = FakeSlurm(fail_next=[(1, "sbatch: error: Batch job submission failed: Invalid account\n")])
    client, _ = make(fake)
    with pytest.raises(SubmissionError, match="Invalid account") as info:
        client.submit("job.sh", cwd=tmp_path)
    assert info.value.argv == ["sbatch", "--parsable", "job.sh"] and info.value.returncode == 1


def test_submit_garbage_output_raises_parse_error(tmp_path: Path) -> None:
    client = SlurmClient(FakeRunner(lambda argv, env: (0, "sbatch: queued somewhere\n", "")))
    with pytest.raises(SchedulerParseError):
        client.submit("job.sh", cwd=tmp_path)


def test_statuses_is_one_squeue_call_per_poll_with_the_final_facts() -> None:
    fake = FakeSlurm(jobs={"1": ("RUNNING", "0:0"), "2": ("FAILED", "3:0"), "3": ("CANCELLED by 0", "0:0"),
                           "4": ("FAILED", "0:9"), "5": ("FAILED", "137:0")})
    client, runner = make(fake)
    for _ in range(3):
        got = client.statuses(["1", "2", "3", "2", "4", "5"])
    assert runner.calls == [(*SQUEUE, "1,2,3,4,5")] * 3  # ended jobs too: no scontrol, no sacct
    assert {k: (v.state, v.exit_code, v.signal) for k, v in got.items()} == {
        "1": (SlurmState.RUNNING, 0, 0), "2": (SlurmState.FAILED, 3, 0), "3": (SlurmState.CANCELLED, 0, 0),
        "4": (SlurmState.FAILED, 0, 9), "5": (SlurmState.FAILED, 137, 0)}
    assert all(v.source == "squeue" and (v.end_time is not None) == v.is_terminal for v in got.values())
    assert client.accounting is None  # slurmdbd was never asked


def test_statuses_reports_unknown_for_ids_the_scheduler_does_not_know_yet() -> None:
    client, runner = make(FakeSlurm(jobs={"1": ("RUNNING", "0:0")}))
    got = client.statuses(["1", "99"])
    assert got["99"].state is SlurmState.UNKNOWN and "not found by squeue/sacct" in (got["99"].reason or "")
    assert not got["99"].is_terminal
    assert runner.calls == [(*SQUEUE, "1,99"), (*SACCT, "99")]  # only the id squeue did not list
    assert client.statuses([]) == {}


def test_jobs_the_controller_forgot_are_asked_of_sacct_once_in_a_bounded_window() -> None:
    fake = FakeSlurm(jobs={"1": ("RUNNING", "0:0"), "2": ("FAILED", "3:0")})
    fake.purged.add("2")  # older than MinJobAge: squeue no longer lists it
    client, runner = make(fake)
    for _ in range(2):
        got = client.statuses(["1", "2"])
        assert (got["2"].state, got["2"].exit_code, got["2"].source) == (SlurmState.FAILED, 3, "sacct")
    assert runner.calls == [(*SQUEUE, "1,2"), (*SACCT, "2"), (*SQUEUE, "1,2")]  # its end is kept
    assert client.accounting is True


def test_detects_disabled_accounting_once_then_never_asks_sacct_again() -> None:
    fake = FakeSlurm(accounting=False, jobs={"1": ("RUNNING", "0:0"), "2": ("FAILED", "0:9")})
    fake.purged.add("3")
    fake.jobs["3"] = ("COMPLETED", "0:0")
    client, runner = make(fake)
    first = client.statuses(["1", "2", "3"])
    assert client.accounting is False
    runner.calls.clear()
    second = client.statuses(["1", "2", "3"])
    assert runner.calls == [(*SQUEUE, "1,2,3")]
    for got in (first, second):
        assert (got["1"].state, got["1"].source) == (SlurmState.RUNNING, "squeue")
        assert (got["2"].state, got["2"].signal, got["2"].source) == (SlurmState.FAILED, 9, "squeue")
        assert got["3"].state is SlurmState.UNKNOWN


def test_without_accounting_queued_running_and_ended_jobs_cost_one_squeue_call() -> None:
    fake = FakeSlurm(jobs={"1": ("COMPLETED", "0:0"), "2": ("TIMEOUT", "0:15"), "3": ("RUNNING", "0:0"),
                           "4": ("PENDING", "0:0")})
    client, runner = make(fake, poll_accounting=False)
    got = client.statuses(["1", "2", "3", "4"])
    assert runner.calls == [(*SQUEUE, "1,2,3,4")]
    assert [got[i].state for i in "1234"] == [SlurmState.COMPLETED, SlurmState.TIMEOUT, SlurmState.RUNNING,
                                              SlurmState.PENDING]
    assert (got["2"].exit_code, got["2"].signal) == (0, 15)


def test_without_accounting_purged_jobs_keep_their_last_terminal_state() -> None:
    fake = FakeSlurm(jobs={"1": ("FAILED", "3:0")})
    client, runner = make(fake, poll_accounting=False)
    assert client.statuses(["1"])["1"].exit_code == 3
    fake.purged.add("1")  # older than MinJobAge: squeue says "Invalid job id"
    again = client.statuses(["1", "7"])
    assert (again["1"].state, again["1"].exit_code) == (SlurmState.FAILED, 3)
    assert again["7"].state is SlurmState.UNKNOWN
    assert all(call[0] == "squeue" for call in runner.calls)


def test_transient_squeue_failures_use_last_known_then_raise_after_budget() -> None:
    fake = FakeSlurm(jobs={"1": ("RUNNING", "0:0")})
    client, runner = make(fake, poll_accounting=True, max_query_failures=2)
    assert client.statuses(["1"])["1"].state is SlurmState.RUNNING
    down = (1, "squeue: error: Unable to contact slurm controller (connect failure)\n")
    fake.fail_next = [down, down]
    assert client.statuses(["1"])["1"].state is SlurmState.RUNNING
    assert client.statuses(["1", "5"])["5"].reason.startswith("status query failed")  # type: ignore[union-attr]
    assert client.statuses(["1"])["1"].state is SlurmState.RUNNING  # success resets the budget
    fake.fail_next = [down, down, down]
    client.statuses(["1"])
    client.statuses(["1"])
    with pytest.raises(SubmissionError, match="3 consecutive status queries failed"):
        client.statuses(["1"])
    assert all(call[0] == "squeue" for call in runner.calls)


def test_auto_detect_does_not_cache_an_ambiguous_sacct_failure() -> None:
    fake = FakeSlurm(jobs={"1": ("COMPLETED", "0:0")})
    fake.purged.add("1")
    client, runner = make(fake)
    fake.fail_next = [(0, ""), (1, "sacct: error: slurmdbd: Connection refused\n")]  # squeue lists nothing
    assert client.statuses(["1"])["1"].state is SlurmState.UNKNOWN
    assert client.accounting is None
    got = client.statuses(["1"])["1"]
    assert (got.state, got.source, client.accounting) == (SlurmState.COMPLETED, "sacct", True)
    assert [c[0] for c in runner.calls] == ["squeue", "sacct", "squeue", "sacct"]


def test_cancel_is_one_scancel_call_and_failures_raise() -> None:
    fake = FakeSlurm(jobs={"1": ("RUNNING", "0:0"), "2": ("PENDING", "0:0")})
    client, runner = make(fake)
    client.cancel(["1", "2", "1"])
    client.cancel([])
    assert runner.calls == [("scancel", "1", "2")]
    assert client.statuses(["1"])["1"].state is SlurmState.CANCELLED
    fake.fail_next = [(1, "scancel: error: Access/permission denied\n")]
    with pytest.raises(SubmissionError, match="permission denied"):
        client.cancel(["2"])


def test_test_only_reports_fit_and_allocation_failure(tmp_path: Path) -> None:
    client, runner = make(FakeSlurm())
    ok, message = client.test_only(tmp_path / "a.sh", extra_args=["--gpus-per-node=8"])
    assert ok and "to start at" in message
    ok, message = client.test_only(tmp_path / "a.sh", extra_args=["--gpus-per-node=9"])
    assert not ok and message == "allocation failure: Requested node configuration is not available"
    assert runner.calls[0] == ("sbatch", "--test-only", "--gpus-per-node=8", str(tmp_path / "a.sh"))
