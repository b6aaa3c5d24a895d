"""Parsers fed the literal text of shared/reference/slurm.md, slurm-lab-logs/ and this cluster.

Fixture files in ``fixtures/`` were captured on the local single-node cluster
(scripts/local-slurm.sh, slurm 22.05.8) while recording the real-SLURM tier's scenarios.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from scaling_matrix.errors import SchedulerParseError
from scaling_matrix.slurm import (
    SACCT_FIELDS,
    SlurmState,
    job_ids_with_comment,
    parse_duration,
    parse_exit_code,
    parse_jobcomp,
    parse_key_values,
    parse_sacct,
    parse_sbatch_job_id,
    parse_sbatch_test_only,
    parse_scontrol_job,
    parse_scontrol_jobs,
    parse_squeue,
)

FIXTURES = Path(__file__).parent / "fixtures"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


# --- sbatch ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("123\n", "123"),
    ("123;local\n", "123"),
    (b"42\n", "42"),
    ("Submitted batch job 12\n", "12"),
    ("sbatch: warning: something\nSubmitted batch job 7", "7"),
    ("  9  ", "9"),
])
def test_parse_sbatch_job_id(text: str | bytes, expected: str) -> None:
    assert parse_sbatch_job_id(text) == expected


@pytest.mark.parametrize("text", ["", "\n", "sbatch: error: Batch job submission failed", "job abc", b"\xff"])
def test_parse_sbatch_job_id_rejects_garbage(text: str | bytes) -> None:
    with pytest.raises(SchedulerParseError, match="sbatch job id"):
        parse_sbatch_job_id(text)


TEST_ONLY_FITS = "sbatch: Job 8 to start at 2026-11-22T20:34:45 using 1 processors on nodes vm in partition gpu"


@pytest.mark.parametrize(("rc", "text", "ok", "message"), [
    (0, f"{TEST_ONLY_FITS}\n", True, TEST_ONLY_FITS),
    (1, "allocation failure: Requested node configuration is not available\n",
     False, "allocation failure: Requested node configuration is not available"),
    (1, "allocation failure: Invalid feature specification\n",
     False, "allocation failure: Invalid feature specification"),
    (1, "allocation failure: Requested reservation is invalid\n",
     False, "allocation failure: Requested reservation is invalid"),
    (1, "", False, "sbatch --test-only exited 1"),
])
def test_parse_sbatch_test_only(rc: int, text: str, ok: bool, message: str) -> None:
    assert parse_sbatch_test_only(rc, text) == (ok, message)


# --- small fields ---------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "seconds"), [
    ("00:00:02", 2), ("00:01:11", 71), ("0:03", 3), ("1:02:03", 3723), ("1-02:03:04", 93784),
    ("2-00", 172800), ("12:34.567", 754.567), ("5", 5),
    ("UNLIMITED", None), ("INVALID", None), ("N/A", None), ("", None), (None, None), ("soon", None),
])
def test_parse_duration(text: str | None, seconds: float | None) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(("text", "expected"), [
    ("3:0", (3, 0)), ("0:9", (0, 9)), ("0:15", (0, 15)), ("0:0", (0, 0)), ("", (None, None)), (None, (None, None)),
])
def test_parse_exit_code(text: str | None, expected: tuple[int | None, int | None]) -> None:
    assert parse_exit_code(text) == expected


def test_parse_key_values_handles_slashes_colons_empty_values_and_nested_equals() -> None:
    kv = parse_key_values("JobId=6 CPUs/Task=1 AllocNode:Sid=localhost:2045 TRES=cpu=1,node=1 Power=\n")
    assert kv == {"JobId": "6", "CPUs/Task": "1", "AllocNode:Sid": "localhost:2045",
                  "TRES": "cpu=1,node=1", "Power": ""}


# --- sacct ------------------------------------------------------------------------------------

SLURM_MD_SACCT = """\
JobID|JobName|State|ExitCode|Elapsed|AllocTRES|Start|End
6|wrap|FAILED|3:0|00:00:02|billing=1,cpu=1,node=1|2026-11-22T19:44:18|2026-11-22T19:44:20
6.batch|batch|FAILED|3:0|00:00:02|cpu=1,mem=0,node=1|2026-11-22T19:44:18|2026-11-22T19:44:20
"""


def test_parse_sacct_slurm_md_example_with_its_own_fields_and_header() -> None:
    fields = ["JobID", "JobName", "State", "ExitCode", "Elapsed", "AllocTRES", "Start", "End"]
    jobs = parse_sacct(SLURM_MD_SACCT, fields)
    assert list(jobs) == ["6"]
    job = jobs["6"]
    assert (job.state, job.exit_code, job.signal, job.elapsed_s) == (SlurmState.FAILED, 3, 0, 2.0)
    assert job.start_time == datetime(2026, 11, 22, 19, 44, 18)
    assert job.end_time == datetime(2026, 11, 22, 19, 44, 20)


def test_parse_sacct_recorded_scenarios_fold_steps_into_jobs() -> None:
    jobs = parse_sacct(fixture("sacct_lab.txt"))
    assert sorted(jobs, key=int) == ["1", "2", "3", "4", "5", "6", "12", "13"]
    summary = {jid: (j.state, j.exit_code, j.signal) for jid, j in jobs.items()}
    assert summary == {
        "1": (SlurmState.TIMEOUT, 0, 15),      # job row 0:0, signal from .batch 0:15
        "2": (SlurmState.FAILED, 3, 0),        # exit 3
        "3": (SlurmState.FAILED, 0, 9),        # kill -9 $$
        "4": (SlurmState.FAILED, 1, 0),        # OOM text + exit 1
        "5": (SlurmState.FAILED, 4, 0),        # srun step .0 failed with 4
        "6": (SlurmState.CANCELLED, 0, 15),    # "CANCELLED by 0" 0:0, .batch 0:15
        "12": (SlurmState.NODE_FAIL, 0, 0),    # node set DOWN; .batch ExitCode is empty
        "13": (SlurmState.CANCELLED, 0, 0),    # cancelled while pending after a requeue
    }
    assert jobs["6"].raw_state == "CANCELLED by 0" and jobs["6"].reason == "CANCELLED by 0"
    assert jobs["1"].elapsed_s == 71.0 and jobs["1"].node_list == "vm" and jobs["1"].partition == "gpu"
    assert jobs["12"].queue_wait_s == 1.0
    assert jobs["13"].start_time is None and jobs["13"].node_list is None and jobs["13"].queue_wait_s is None
    assert all(j.source == "sacct" for j in jobs.values())


def test_parse_sacct_lagging_accounting_shows_pending_job_row_with_running_batch_step() -> None:
    # Real text: slurmdbd had the .batch step but not yet the job start ("allocation|PENDING").
    jobs = parse_sacct(fixture("sacct_active.txt"))
    assert jobs["14"].state is SlurmState.PENDING and jobs["14"].is_active
    assert jobs["14"].start_time is None and jobs["14"].queue_wait_s is None


def test_parse_sacct_prints_exit_statuses_of_128_and_more_minus_128() -> None:
    # Real text: job 30 = `srun bash -c 'kill -9 $$'` as the last line (script exit 137),
    # job 32 = `exit 137`. scontrol shows ExitCode=137:0 for both; sacct shows 9:0.
    jobs = parse_sacct(fixture("sacct_exit_137.txt"))
    assert (jobs["30"].exit_code, jobs["30"].signal) == (9, 9)   # signal from the killed step .0
    assert (jobs["32"].exit_code, jobs["32"].signal) == (9, 0)   # indistinguishable from `exit 9`
    shown = parse_scontrol_job(fixture("scontrol_exit_137.txt"))
    assert (shown.exit_code, shown.signal) == (137, 0)


def test_parse_sacct_extern_and_numbered_steps_and_job_seen_only_through_steps() -> None:
    text = (
        "7|train|COMPLETED|0:0|00:10:00|2026-01-01T00:00:00|2026-01-01T00:10:00|gpu[01-02]|2026-01-01T00:00:00|gpu\n"
        "7.batch|batch|COMPLETED|0:0|00:10:00|2026-01-01T00:00:00|2026-01-01T00:10:00|gpu01|2026-01-01T00:00:00|\n"
        "7.extern|extern|COMPLETED|0:0|00:10:00|2026-01-01T00:00:00|2026-01-01T00:10:00|gpu[01-02]|2026-01-01T00:00:00|\n"
        "7.0|python|COMPLETED|0:0|00:09:58|2026-01-01T00:00:01|2026-01-01T00:09:59|gpu[01-02]|2026-01-01T00:00:01|\n"
        "8.batch|batch|FAILED|2:0|00:00:01|2026-01-01T00:00:00|2026-01-01T00:00:01|gpu01|2026-01-01T00:00:00|\n"
    )
    jobs = parse_sacct(text)
    assert jobs["7"].state is SlurmState.COMPLETED and jobs["7"].node_list == "gpu[01-02]"
    assert jobs["7"].elapsed_s == 600.0
    assert (jobs["8"].job_id, jobs["8"].state, jobs["8"].exit_code) == ("8", SlurmState.FAILED, 2)


def test_parse_sacct_job_name_with_pipe_and_bad_rows() -> None:
    row = "9|a|b|FAILED|1:0|00:00:01|2026-01-01T00:00:00|2026-01-01T00:00:01|vm|2026-01-01T00:00:00|gpu\n"
    assert parse_sacct(row)["9"].exit_code == 1
    with pytest.raises(SchedulerParseError, match="sacct row"):
        parse_sacct("9|wrap|FAILED\n")
    assert parse_sacct("") == {}
    assert SACCT_FIELDS[0] == "JobID"


# --- squeue -----------------------------------------------------------------------------------

def test_parse_squeue_recorded_text() -> None:
    jobs = parse_squeue(fixture("squeue.txt"))
    assert {jid: (j.state, j.reason, j.node_list) for jid, j in jobs.items()} == {
        "15": (SlurmState.PENDING, None, None),
        "16": (SlurmState.PENDING, "Priority", None),
        "14": (SlurmState.RUNNING, None, "vm"),
    }
    assert jobs["14"].elapsed_s == 2.0 and jobs["14"].exit_code is None and jobs["14"].source == "squeue"


def test_parse_squeue_rejects_other_formats() -> None:
    with pytest.raises(SchedulerParseError, match="squeue"):
        parse_squeue("15 RUNNING 0:02\n")  # the lab log's default-format line


# --- scontrol ---------------------------------------------------------------------------------

SCANCEL_LOG = """\
   JobState=CANCELLED Reason=None Dependency=(null)
   Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=0:0
"""
SRUN_SCANCEL_LOG = """\
   JobState=COMPLETING Reason=None Dependency=(null)
   Requeue=1 Restarts=0 BatchFlag=0 Reboot=0 ExitCode=0:15
"""
SRUN_SIGTERM_LOG = """\
   JobState=FAILED Reason=JobLaunchFailure Dependency=(null)
   Requeue=1 Restarts=0 BatchFlag=0 Reboot=0 ExitCode=0:9
"""


@pytest.mark.parametrize(("text", "job_id", "state", "reason", "code", "sig"), [
    (SCANCEL_LOG, "15", SlurmState.CANCELLED, None, 0, 0),
    (SRUN_SCANCEL_LOG, "16", SlurmState.COMPLETING, None, 0, 15),
    (SRUN_SIGTERM_LOG, "19", SlurmState.FAILED, "JobLaunchFailure", 0, 9),
])
def test_parse_scontrol_lab_log_excerpts(text: str, job_id: str, state: SlurmState, reason: str | None,
                                         code: int, sig: int) -> None:
    job = parse_scontrol_job(text, job_id=job_id)
    assert (job.job_id, job.state, job.reason, job.exit_code, job.signal) == (job_id, state, reason, code, sig)
    assert job.requeue is True


def test_parse_scontrol_excerpt_without_job_id_needs_one() -> None:
    with pytest.raises(SchedulerParseError, match="JobId"):
        parse_scontrol_job(SCANCEL_LOG)
    with pytest.raises(SchedulerParseError, match="scontrol show job"):
        parse_scontrol_job("slurm_load_jobs error: Invalid job id specified\n")


def test_parse_scontrol_timeout_record() -> None:
    job = parse_scontrol_job(fixture("scontrol_timeout.txt"))
    assert (job.job_id, job.state, job.reason, job.exit_code, job.signal) == ("1", SlurmState.TIMEOUT,
                                                                              "TimeLimit", 0, 15)
    assert job.elapsed_s == 71.0 and job.queue_wait_s == 0.0 and job.partition == "gpu"
    assert job.end_time == datetime(2026, 11, 22, 20, 34, 39) and job.node_list == "vm"


def test_parse_scontrol_node_fail_running_and_pending_records() -> None:
    failed = parse_scontrol_job(fixture("scontrol_node_fail.txt"))
    assert (failed.state, failed.reason, failed.requeue) == (SlurmState.NODE_FAIL, "NodeDown", False)
    running = parse_scontrol_job(fixture("scontrol_running.txt"))
    assert running.state is SlurmState.RUNNING and running.end_time is None and running.node_list == "vm"
    pending = parse_scontrol_job(fixture("scontrol_pending.txt"))
    assert pending.state is SlurmState.PENDING and pending.node_list is None
    assert pending.start_time is None and pending.queue_wait_s is None


def test_parse_scontrol_jobs_many_records_and_one_line_format() -> None:
    text = "\n".join(fixture(n) for n in ("scontrol_timeout.txt", "scontrol_running.txt", "scontrol_pending.txt"))
    assert sorted(parse_scontrol_jobs(text)) == ["1", "14", "15"]
    one_line = "\n".join(" ".join(fixture(n).split()) for n in ("scontrol_timeout.txt", "scontrol_running.txt"))
    jobs = parse_scontrol_jobs(one_line)
    assert jobs["1"].state is SlurmState.TIMEOUT and jobs["14"].state is SlurmState.RUNNING


# --- jobcomp ----------------------------------------------------------------------------------

def test_parse_jobcomp_log() -> None:
    jobs = parse_jobcomp(fixture("jobcomp.log"))
    assert {jid: (j.state, j.exit_code, j.signal) for jid, j in jobs.items()} == {
        "2": (SlurmState.FAILED, 3, 0), "3": (SlurmState.FAILED, 0, 9), "4": (SlurmState.FAILED, 1, 0),
        "5": (SlurmState.FAILED, 4, 0), "6": (SlurmState.CANCELLED, 0, 0), "1": (SlurmState.TIMEOUT, 0, 0),
        "12": (SlurmState.NODE_FAIL, 0, 0),
        "13": (SlurmState.CANCELLED, 0, 0),  # NODE_FAIL (requeued), then cancelled: the last line wins
    }
    assert jobs["3"].elapsed_s == 2.0 and jobs["3"].source == "jobcomp" and jobs["3"].node_list == "vm"


def test_job_ids_with_comment_in_scontrol_records_and_sacct_lines() -> None:
    mine = "scaling-matrix:run-1:tiny-llama-g1:2"
    scontrol = (f"JobId=7 JobName=a UserId=root(0) JobState=RUNNING Comment={mine} Requeue=0\n"
                f"JobId=8 JobName=b JobState=PENDING Comment={mine}x\n"
                "JobId=9 JobName=c JobState=COMPLETED Requeue=0\n"
                f"JobId=12 JobName=d JobState=COMPLETED Comment={mine} ExitCode=0:0\n")
    assert job_ids_with_comment(scontrol, mine) == ["7", "12"]
    sacct = f"5|{mine}\n5.batch|{mine}\n6|\n13|{mine[:-1]}3\n"
    assert job_ids_with_comment(sacct, mine) == ["5"]
    assert job_ids_with_comment("No jobs in the system\n", mine) == []
