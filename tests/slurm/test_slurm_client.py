"""SlurmClient against a FakeRunner that speaks real SLURM text; assertions are on recorded argv."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from scaling_matrix.adapters.runner import FakeRunner
from scaling_matrix.adapters.slurm import SlurmClient
from scaling_matrix.errors import SchedulerParseError, SubmissionError
from scaling_matrix.slurm import SACCT_FIELDS, SQUEUE_FORMAT, SlurmState

FIELDS = ",".join(SACCT_FIELDS)
T = "2026-11-22T20:33:28"


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
        assert argv[:5] == ("sacct", "-P", "-n", "-o", FIELDS)
        rows = []
        for job_id in argv[argv.index("-j") + 1].split(","):
            if job_id in self.jobs:
                state, code = self.jobs[job_id]
                rows.append(f"{job_id}|wrap|{state}|{code}|00:00:02|{T}|{T}|vm|{T}|gpu")
                rows.append(f"{job_id}.batch|batch|{state.split()[0]}|{code}|00:00:02|{T}|{T}|vm|{T}|")
        return 0, "".join(r + "\n" for r in rows), ""

    def squeue(self, argv: tuple[str, ...]) -> tuple[int, str, str]:
        assert argv[:4] == ("squeue", "-h", "-o", SQUEUE_FORMAT)
        ids = argv[argv.index("-j") + 1].split(",")
        known = [i for i in ids if i in self.jobs and i not in self.purged]
        if not known:
            return 1, "", "slurm_load_jobs error: Invalid job id specified\n"
        active = [i for i in known if SlurmState.parse(self.jobs[i][0]).is_active]
        return 0, "".join(f"{i}|{self.jobs[i][0]}|0:02|vm|None\n" for i in active), ""

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


def test_statuses_with_accounting_is_one_sacct_call_per_poll() -> None:
    fake = FakeSlurm(jobs={"1": ("RUNNING", "0:0"), "2": ("FAILED", "3:0"), "3": ("CANCELLED by 0", "0:0")})
    client, runner = make(fake)
    for _ in range(3):
        got = client.statuses(["1", "2", "3", "2"])
    assert runner.calls == [("sacct", "-P", "-n", "-o", FIELDS, "-j", "1,2,3")] * 3
    assert {k: (v.state, v.exit_code) for k, v in got.items()} == {
        "1": (SlurmState.RUNNING, 0), "2": (SlurmState.FAILED, 3), "3": (SlurmState.CANCELLED, 0)}
    assert client.accounting is True


def test_statuses_reports_unknown_for_ids_the_scheduler_does_not_know_yet() -> None:
    client, _ = make(FakeSlurm(jobs={"1": ("RUNNING", "0:0")}))
    got = client.statuses(["1", "99"])
    assert got["99"].state is SlurmState.UNKNOWN and "not found by sacct" in (got["99"].reason or "")
    assert not got["99"].is_terminal
    assert client.statuses([]) == {}


def test_detects_disabled_accounting_once_then_uses_squeue_and_scontrol() -> None:
    fake = FakeSlurm(accounting=False, jobs={"1": ("RUNNING", "0:0"), "2": ("FAILED", "0:9")})
    client, runner = make(fake)
    first = client.statuses(["1", "2"])
    assert client.accounting is False
    runner.calls.clear()
    second = client.statuses(["1", "2"])
    assert runner.calls == [("squeue", "-h", "-o", SQUEUE_FORMAT, "-j", "1,2"), ("scontrol", "show", "job", "2")]
    for got in (first, second):
        assert (got["1"].state, got["1"].source) == (SlurmState.RUNNING, "squeue")
        assert (got["2"].state, got["2"].signal, got["2"].source) == (SlurmState.FAILED, 9, "scontrol")


def test_without_accounting_all_active_is_one_squeue_call() -> None:
    fake = FakeSlurm(jobs={"1": ("RUNNING", "0:0"), "2": ("PENDING", "0:0")})
    client, runner = make(fake, poll_accounting=False)
    client.statuses(["1", "2"])
    assert runner.calls == [("squeue", "-h", "-o", SQUEUE_FORMAT, "-j", "1,2")]


def test_without_accounting_several_finished_jobs_cost_one_scontrol_call() -> None:
    fake = FakeSlurm(jobs={"1": ("COMPLETED", "0:0"), "2": ("TIMEOUT", "0:15"), "3": ("RUNNING", "0:0")})
    client, runner = make(fake, poll_accounting=False)
    got = client.statuses(["1", "2", "3"])
    assert runner.calls == [("squeue", "-h", "-o", SQUEUE_FORMAT, "-j", "1,2,3"), ("scontrol", "show", "job")]
    assert [got[i].state for i in "123"] == [SlurmState.COMPLETED, SlurmState.TIMEOUT, SlurmState.RUNNING]


def test_without_accounting_purged_jobs_keep_their_last_terminal_state() -> None:
    fake = FakeSlurm(jobs={"1": ("FAILED", "3:0")})
    client, _ = make(fake, poll_accounting=False)
    assert client.statuses(["1"])["1"].exit_code == 3
    fake.purged.add("1")  # older than MinJobAge: squeue and scontrol both say "Invalid job id"
    again = client.statuses(["1", "7"])
    assert (again["1"].state, again["1"].exit_code) == (SlurmState.FAILED, 3)
    assert again["7"].state is SlurmState.UNKNOWN


def test_transient_sacct_failures_use_last_known_then_raise_after_budget() -> None:
    fake = FakeSlurm(jobs={"1": ("RUNNING", "0:0")})
    client, runner = make(fake, poll_accounting=True, max_query_failures=2)
    assert client.statuses(["1"])["1"].state is SlurmState.RUNNING
    down = (1, "sacct: error: Problem talking to the database: Connection refused\n")
    fake.fail_next = [down, down]
    assert client.statuses(["1"])["1"].state is SlurmState.RUNNING
    assert client.statuses(["1", "5"])["5"].reason.startswith("status query failed")  # type: ignore[union-attr]
    assert client.statuses(["1"])["1"].state is SlurmState.RUNNING  # success resets the budget
    fake.fail_next = [down, down, down]
    client.statuses(["1"])
    client.statuses(["1"])
    with pytest.raises(SubmissionError, match="3 consecutive status queries failed"):
        client.statuses(["1"])
    assert all(call[0] == "sacct" for call in runner.calls)


def test_auto_detect_does_not_cache_an_ambiguous_sacct_failure() -> None:
    fake = FakeSlurm(jobs={"1": ("RUNNING", "0:0")},
                     fail_next=[(1, "sacct: error: slurmdbd: Connection refused\n")])
    client, runner = make(fake)
    assert client.statuses(["1"])["1"].source == "squeue"
    assert client.accounting is None
    assert client.statuses(["1"])["1"].source == "sacct"
    assert client.accounting is True
    assert [c[0] for c in runner.calls] == ["sacct", "squeue", "sacct"]


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
