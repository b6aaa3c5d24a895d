"""SLURM client: ``sbatch`` / ``sacct`` / ``squeue`` / ``scontrol`` / ``scancel`` through a CommandRunner.

All text is parsed by the pure functions in :mod:`scaling_matrix.slurm.text`; this module only
builds argv lists, runs them through the injected runner and decides what a failure means.

Polling costs one scheduler query per :meth:`SlurmClient.statuses` call for any number of jobs:
``sacct -j a,b,c`` when accounting works (detected on first use, then cached), otherwise one
``squeue -j a,b,c`` for active jobs plus one ``scontrol show job`` for the ids squeue no longer
lists (finished jobs stay visible there for ``MinJobAge``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from scaling_matrix.adapters.runner import CommandResult, CommandRunner
from scaling_matrix.errors import SubmissionError
from scaling_matrix.slurm.states import SlurmState
from scaling_matrix.slurm.text import (
    SACCT_FIELDS,
    SQUEUE_FORMAT,
    JobStatus,
    job_ids_with_comment,
    parse_sacct,
    parse_sbatch_job_id,
    parse_sbatch_test_only,
    parse_scontrol_jobs,
    parse_squeue,
)

__all__ = ["SlurmClient"]

log = logging.getLogger(__name__)

_ACCOUNTING_OFF = ("accounting storage is disabled", "not running a supported accounting_storage")
_INVALID_JOB = "Invalid job id specified"


class SlurmClient:
    """Submits, polls and cancels SLURM jobs through an injected :class:`CommandRunner`.

    Args:
        runner: runs each argv (``SubprocessRunner`` for real, ``FakeRunner`` in tests).
        poll_accounting: True to poll with ``sacct``, False to use ``squeue`` + ``scontrol``,
            None to detect on the first :meth:`statuses` call and cache the answer.
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
        """Return whether polls use ``sacct`` (None until the first poll detects it)."""
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

        Note:
            A failed query returns the last known statuses (UNKNOWN for ids never seen) until
            ``max_query_failures`` consecutive failures, then raises :class:`SubmissionError`.
        """
        ids = _unique(job_ids)
        if not ids:
            return {}
        if self._accounting is not False:
            result = self._run(["sacct", "-P", "-n", "-o", ",".join(SACCT_FIELDS), "-j", ",".join(ids)])
            if result.ok:
                self._accounting = True
                return self._answer(ids, parse_sacct(result.stdout), "sacct")
            if self._accounting is True and not _accounting_off(result):
                return self._query_failed(ids, result)
            self._note_no_accounting(result)
        return self._poll_without_accounting(ids)

    def _note_no_accounting(self, result: CommandResult) -> None:
        """Cache "no accounting" only when sacct said so; other failures are re-detected next poll."""
        reason = (result.stderr or result.stdout).strip()[-200:]
        if _accounting_off(result):
            log.info("sacct unavailable (%s); polling with squeue + scontrol", reason)
            self._accounting = False
        else:
            log.warning("sacct failed (rc %s: %s); using squeue + scontrol for this poll",
                        result.returncode, reason)

    def _poll_without_accounting(self, ids: list[str]) -> dict[str, JobStatus]:
        """Return statuses from ``squeue`` for active ids, ``scontrol`` for the rest."""
        result = self._run(["squeue", "-h", "-o", SQUEUE_FORMAT, "-j", ",".join(ids)])
        if not result.ok and _INVALID_JOB not in result.stderr:
            return self._query_failed(ids, result)
        found = {k: v for k, v in parse_squeue(result.stdout if result.ok else "").items() if k in ids}
        missing = [i for i in ids if i not in found]
        if missing:
            argv = ["scontrol", "show", "job", *missing[:1]] if len(missing) == 1 else ["scontrol", "show", "job"]
            shown = self._run(argv)
            if not shown.ok and _INVALID_JOB not in shown.stderr:
                return self._query_failed(ids, shown)
            jobs = parse_scontrol_jobs(shown.stdout) if shown.ok else {}
            found.update({k: v for k, v in jobs.items() if k in missing})
        return self._answer(ids, found, "squeue+scontrol")

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
