"""SLURM client: ``sbatch`` / ``sacct`` / ``squeue`` / ``scontrol`` / ``scancel`` through a CommandRunner.

All text is parsed by the pure functions in :mod:`scaling_matrix.slurm.text`; this module only
builds argv lists, runs them through the injected runner and decides what a failure means.

Polling costs one scheduler query per :meth:`SlurmClient.statuses` call for any number of jobs:
``squeue -t all -j a,b,c`` (one slurmctld RPC, as a plain ``squeue`` loop costs; ended jobs stay
listed with exit code and times for ``MinJobAge``). ``sacct`` (slurmdbd) is asked only about ids
the controller no longer holds, within a bounded window; whether accounting works is detected on
that first use and cached.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from scaling_matrix.adapters.runner import CommandResult, CommandRunner
from scaling_matrix.errors import SubmissionError
from scaling_matrix.slurm.states import SlurmState
from scaling_matrix.slurm.squeue import parse_squeue_all, squeue_all_argv
from scaling_matrix.slurm.text import (
    SACCT_FIELDS,
    JobStatus,
    job_ids_with_comment,
    parse_sacct,
    parse_sbatch_job_id,
    parse_sbatch_test_only,
)

__all__ = ["SlurmClient"]

log = logging.getLogger(__name__)

_ACCOUNTING_OFF = ("accounting storage is disabled", "not running a supported accounting_storage")
_INVALID_JOB = "Invalid job id specified"
#: How far back ``sacct`` looks for jobs the controller forgot (jobs that ended in it; never Epoch 0,
#: sacct's default with ``-j``, which scans the whole accounting history).
ACCOUNTING_WINDOW = "now-30days"


class SlurmClient:
    """Submits, polls and cancels SLURM jobs through an injected :class:`CommandRunner`.

    Args:
        runner: runs each argv (``SubprocessRunner`` for real, ``FakeRunner`` in tests).
        poll_accounting: True to ask ``sacct`` about jobs the controller forgot, False never to,
            None to detect it the first time it is needed and cache the answer.
        max_query_failures: consecutive failed status queries tolerated before raising.
        timeout_s: time limit for each scheduler command.
    """

    def __init__(self, runner: CommandRunner, poll_accounting: bool | None = None, *,
                 max_query_failures: int = 3, timeout_s: float = 60.0) -> None:
        self._runner = runner
        self._accounting = poll_accounting
        self._max_failures = max_query_failures
        self._failures = 0
        self._timeout_s = timeout_s
        self._last: dict[str, JobStatus] = {}

    @property
    def accounting(self) -> bool | None:
        """Return whether ``sacct`` answers for forgotten jobs (None until first needed)."""
        return self._accounting

    def _run(self, argv: Sequence[str], *, cwd: Path | None = None,
             env: Mapping[str, str] | None = None) -> CommandResult:
        return self._runner.run(list(argv), cwd=cwd, env=env, timeout_s=self._timeout_s)

    def submit(self, script_path: str | Path, *, cwd: Path, env: Mapping[str, str] | None = None,
               extra_args: Sequence[str] = ()) -> str:
        """Return the job id of ``sbatch --parsable [extra_args] script_path`` run in ``cwd``.

        Raises:
            SubmissionError: sbatch exited non-zero or timed out.
            SchedulerParseError: sbatch succeeded but printed no job id.
        """
        argv = ["sbatch", "--parsable", *extra_args, str(script_path)]
        result = self._run(argv, cwd=cwd, env=env)
        if not result.ok:
            raise SubmissionError(argv, result.returncode, result.stderr or result.stdout)
        return parse_sbatch_job_id(result.stdout)

    def find_by_comment(self, comment: str) -> str | None:
        """Return the id of the newest job whose ``--comment`` is ``comment``, or None: jobs the controller
        still holds (``scontrol show job``: queued, running, finished within ``MinJobAge``), then, with
        accounting, a week of ``sacct`` (needs ``AccountingStoreFlags=job_comment``)."""
        shown = self._run(["scontrol", "-o", "show", "job"])
        ids = job_ids_with_comment(shown.stdout, comment) if shown.ok else []
        if not ids and self._accounting is not False:
            found = self._run(["sacct", "-X", "-n", "-P", "-o", "JobID,Comment", "-S", "now-7days"])
            ids = job_ids_with_comment(found.stdout, comment) if found.ok else []
        return max(ids, key=lambda i: int(i) if i.isdigit() else -1) if ids else None

    def test_only(self, script_path: str | Path, *, cwd: Path | None = None,
                  extra_args: Sequence[str] = ()) -> tuple[bool, str]:
        """Return ``(fits, message)`` from ``sbatch --test-only``: would SLURM accept this request?"""
        result = self._run(["sbatch", "--test-only", *extra_args, str(script_path)], cwd=cwd)
        return parse_sbatch_test_only(result.returncode, f"{result.stderr}\n{result.stdout}")

    def cancel(self, job_ids: Iterable[str]) -> None:
        """Return None after one ``scancel`` call for all ``job_ids`` (finished jobs are fine).

        Raises:
            SubmissionError: scancel exited non-zero.
        """
        ids = _unique(job_ids)
        if not ids:
            return
        argv = ["scancel", *ids]
        result = self._run(argv)
        if not result.ok:
            raise SubmissionError(argv, result.returncode, result.stderr or result.stdout)

    def statuses(self, job_ids: Iterable[str]) -> dict[str, JobStatus]:
        """Return a status for every id in ``job_ids`` (state UNKNOWN when the scheduler has none).

        One ``squeue -t all`` for all of them (one slurmctld RPC, the same as a plain squeue loop;
        ended jobs stay listed with their final facts for ``MinJobAge``); only ids the controller no
        longer holds are asked of ``sacct`` (a bounded window: never the whole history), once.

        Note:
            A failed query returns the last known statuses (UNKNOWN for ids never seen) until
            ``max_query_failures`` consecutive failures, then raises :class:`SubmissionError`.
        """
        ids = _unique(job_ids)
        if not ids:
            return {}
        result = self._run(squeue_all_argv(ids))
        if not result.ok and _INVALID_JOB not in result.stderr:  # one unknown id alone: "Invalid job id"
            return self._query_failed(ids, result)
        found = {k: v for k, v in parse_squeue_all(result.stdout if result.ok else "").items() if k in ids}
        gone = [i for i in ids if i not in found and not (i in self._last and self._last[i].is_terminal)]
        if gone and self._accounting is not False:
            found.update(self._from_accounting(gone))
        return self._answer(ids, found, "squeue" if not gone or self._accounting is False else "squeue/sacct")

    def _from_accounting(self, ids: list[str]) -> dict[str, JobStatus]:
        """Return what ``sacct`` knows of ``ids`` (jobs the controller forgot); caches "no accounting"."""
        result = self._run(["sacct", "-P", "-n", "-o", ",".join(SACCT_FIELDS), "-S", ACCOUNTING_WINDOW,
                            "-j", ",".join(ids)])
        if result.ok:
            self._accounting = True
            return {k: v for k, v in parse_sacct(result.stdout).items() if k in ids}
        reason = (result.stderr or result.stdout).strip()[-200:]
        if _accounting_off(result):
            log.info("sacct unavailable (%s); jobs the controller forgot keep their last known state", reason)
            self._accounting = False
        else:
            log.warning("sacct failed (rc %s: %s) for jobs the controller forgot", result.returncode, reason)
        return {}

    def _answer(self, ids: list[str], found: Mapping[str, JobStatus], source: str) -> dict[str, JobStatus]:
        """Return ``found`` completed for all ``ids``; remembers terminal states that age out."""
        self._failures = 0
        out: dict[str, JobStatus] = {}
        for job_id in ids:
            status = found.get(job_id)
            if status is None:
                last = self._last.get(job_id)
                status = last if last is not None and last.is_terminal else JobStatus(
                    job_id, SlurmState.UNKNOWN, reason=f"not found by {source}", source=source)
            out[job_id] = status
        self._last.update(out)
        return out

    def _query_failed(self, ids: list[str], result: CommandResult) -> dict[str, JobStatus]:
        """Return last known statuses after a failed query, or raise once the budget is spent."""
        self._failures += 1
        if self._failures > self._max_failures:
            raise SubmissionError(list(result.argv), result.returncode,
                                  f"{self._failures} consecutive status queries failed: {result.stderr}")
        log.warning("status query failed (%d/%d): %s exited %s: %s", self._failures, self._max_failures,
                    result.argv[0] if result.argv else "?", result.returncode, result.stderr.strip()[-200:])
        reason = f"status query failed: {result.stderr.strip()[-200:]}"
        return {i: self._last.get(i) or JobStatus(i, SlurmState.UNKNOWN, reason=reason, source="none")
                for i in ids}


def _unique(job_ids: Iterable[str]) -> list[str]:
    """Return the ids as strings, duplicates dropped, order kept."""
    return list(dict.fromkeys(str(j) for j in job_ids))


def _accounting_off(result: CommandResult) -> bool:
    """Return True when sacct's failure means accounting is not configured (or sacct is missing)."""
    text = f"{result.stderr}\n{result.stdout}"
    return result.returncode == 127 or any(marker in text for marker in _ACCOUNTING_OFF)
