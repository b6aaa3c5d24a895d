"""Pure parsers for SLURM command output: ``sbatch``, ``sacct -P``, ``squeue``, ``scontrol``, jobcomp.

Every parser takes the literal text a command printed and returns :class:`JobStatus` values;
none of them runs a command. Fixtures: ``shared/reference/slurm.md`` and ``slurm-lab-logs/``.

Note:
    Times are naive :class:`datetime` values in the cluster's local time, as SLURM prints them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime

from scaling_matrix.errors import SchedulerParseError
from scaling_matrix.slurm.states import SlurmState
from scaling_matrix.slurm.status import JobStatus

__all__ = [
    "SACCT_FIELDS",
    "SQUEUE_FORMAT",
    "JobStatus",
    "parse_duration",
    "parse_exit_code",
    "parse_jobcomp",
    "parse_key_values",
    "parse_sacct",
    "parse_sbatch_job_id",
    "parse_sbatch_test_only",
    "parse_scontrol_job",
    "parse_scontrol_jobs",
    "parse_squeue",
]

#: ``sacct -P -n -o`` fields, in the order :func:`parse_sacct` expects them.
SACCT_FIELDS: tuple[str, ...] = (
    "JobID", "JobName", "State", "ExitCode", "Elapsed", "Start", "End", "NodeList", "Submit", "Partition",
)
#: ``squeue -h -o`` format, in the order :func:`parse_squeue` expects it.
SQUEUE_FORMAT = "%i|%T|%M|%N|%r"

_EMPTY = frozenset({"", "unknown", "none", "n/a", "(null)", "none assigned", "invalid", "unlimited"})


def _blank(value: str | None) -> bool:
    return value is None or value.strip().lower() in _EMPTY


def _text(value: str | None) -> str | None:
    if value is None or _blank(value):
        return None
    return value.strip()


def _time(value: str | None) -> datetime | None:
    if value is None or _blank(value):
        return None
    try:
        return datetime.fromisoformat(value.strip())
    except ValueError:
        return None


def parse_duration(text: str | None) -> float | None:
    """Return seconds for a SLURM duration (``[[HH:]MM:]SS[.fff]`` or ``D-HH[:MM[:SS]]``).

    None when the text is empty, ``UNLIMITED``, ``INVALID`` or unrecognised.
    """
    if text is None or _blank(text):
        return None
    m = re.fullmatch(r"(?:(\d+)-)?(\d+(?::\d+){0,2}(?:\.\d+)?)", text.strip())
    if not m:
        return None
    days, rest = m.groups()
    parts = [float(p) for p in rest.split(":")]
    # "D-HH[:MM[:SS]]" counts from the hours; "[[HH:]MM:]SS" from the seconds.
    padded = [*parts, 0.0, 0.0][:3] if days is not None else [*([0.0] * (3 - len(parts))), *parts]
    hours, minutes, seconds = padded
    return int(days or 0) * 86400 + hours * 3600 + minutes * 60 + seconds


def parse_exit_code(text: str | None) -> tuple[int | None, int | None]:
    """Return ``(exit status, signal)`` from SLURM's ``status:signal`` text; ``(None, None)`` if absent."""
    m = re.fullmatch(r"\s*(\d+):(\d+)\s*", text or "")
    if not m:
        return None, None
    return int(m.group(1)), int(m.group(2))


def _queue_wait(state: SlurmState, submit: datetime | None, start: datetime | None) -> float | None:
    if state is SlurmState.PENDING or submit is None or start is None:
        return None
    return max(0.0, (start - submit).total_seconds())


def parse_sbatch_job_id(text: str | bytes) -> str:
    """Return the job id printed by ``sbatch`` (``123``, ``123;cluster`` or ``Submitted batch job 123``).

    Raises:
        SchedulerParseError: no job id in ``text``.
    """
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    for line in text.splitlines():
        m = re.fullmatch(r"\s*(\d+(?:_\d+)?)(?:;\S+)?\s*", line) or re.search(
            r"Submitted batch job (\d+)", line)
        if m:
            return m.group(1)
    raise SchedulerParseError("sbatch job id", text)


def parse_sbatch_test_only(returncode: int, text: str) -> tuple[bool, str]:
    """Return ``(fits, message)`` for ``sbatch --test-only`` output (it prints to stderr)."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for line in lines:
        if "to start at" in line and returncode == 0:
            return True, line
    for line in lines:
        if re.search(r"allocation failure|error", line, re.I):
            return False, line
    return returncode == 0, lines[-1] if lines else f"sbatch --test-only exited {returncode}"


def _split_sacct_line(line: str, fields: Sequence[str]) -> list[str]:
    values = line.split("|")
    n = len(fields)
    if len(values) > n and "JobName" in fields:  # a job name containing "|": rejoin it
        at, extra = fields.index("JobName"), len(values) - n
        values = [*values[:at], "|".join(values[at:at + extra + 1]), *values[at + extra + 1:]]
    if len(values) != n:
        raise SchedulerParseError(f"sacct row ({n} fields {','.join(fields)})", line)
    return values


def _sacct_status(row: dict[str, str], steps: list[dict[str, str]]) -> JobStatus:
    raw = row["State"].strip()
    state = SlurmState.parse(raw)
    code, sig = parse_exit_code(row.get("ExitCode"))
    if state is not SlurmState.COMPLETED and not sig:  # e.g. "CANCELLED by 0" 0:0 but .batch 0:15
        sig = next((s for s in (parse_exit_code(st.get("ExitCode"))[1] for st in steps) if s), sig)
    submit, start = _time(row.get("Submit")), _time(row.get("Start"))
    return JobStatus(
        job_id=row["JobID"], state=state, exit_code=code, signal=sig,
        elapsed_s=parse_duration(row.get("Elapsed")), queue_wait_s=_queue_wait(state, submit, start),
        node_list=_text(row.get("NodeList")), partition=_text(row.get("Partition")),
        reason=raw if " by " in raw else None, submit_time=submit,
        start_time=start if state is not SlurmState.PENDING else None,
        end_time=_time(row.get("End")), raw_state=raw, source="sacct",
    )


def parse_sacct(text: str, fields: Sequence[str] = SACCT_FIELDS) -> dict[str, JobStatus]:
    """Return one status per job from ``sacct -P [-n] -o <fields>`` text.

    ``fields`` must name ``JobID`` and ``State``; ``ExitCode``, ``Elapsed``, ``Start``, ``End``,
    ``Submit``, ``NodeList`` and ``Partition`` are used when present. A header row is skipped.

    Note:
        sacct prints exit statuses >= 128 minus 128 (a script's ``exit 137`` shows as ``9:0``,
        while ``scontrol`` shows ``137:0``); when srun's task was killed, the step row's
        signal (``.0 ... 0:9``) is folded in, so such a job reads exit 9, signal 9.

    Step rows (``.batch``, ``.extern``, ``.0`` ...) are folded into their job: the job row
    gives state and exit code; a step gives the signal when the job row has none. A job seen
    only through its steps takes the ``.batch`` (else first) step's values.

    Raises:
        SchedulerParseError: a row does not have the expected fields.
    """
    jobs: dict[str, dict[str, str]] = {}
    steps: dict[str, list[dict[str, str]]] = {}
    for line in text.splitlines():
        if not line.strip() or line.split("|", 1)[0] == fields[0]:
            continue
        row = dict(zip(fields, _split_sacct_line(line, fields), strict=True))
        job_id, _, step = row["JobID"].partition(".")
        if step:
            steps.setdefault(job_id, []).append(row)
        else:
            jobs[job_id] = row
    for job_id, rows in steps.items():
        if job_id not in jobs:
            batch = next((r for r in rows if r["JobID"].endswith(".batch")), rows[0])
            jobs[job_id] = {**batch, "JobID": job_id}
    return {jid: _sacct_status(row, steps.get(jid, [])) for jid, row in jobs.items()}


def parse_squeue(text: str) -> dict[str, JobStatus]:
    """Return one status per job from ``squeue -h -o '%i|%T|%M|%N|%r'`` text (no exit codes there).

    Raises:
        SchedulerParseError: a line does not have five ``|``-separated fields.
    """
    out: dict[str, JobStatus] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        fields = line.split("|", 4)
        if len(fields) != 5:
            raise SchedulerParseError(f"squeue line ({SQUEUE_FORMAT})", line)
        job_id, state, used, nodes, reason = (f.strip() for f in fields)
        out[job_id] = JobStatus(
            job_id=job_id, state=SlurmState.parse(state), elapsed_s=parse_duration(used),
            node_list=_text(nodes), reason=_text(reason), raw_state=state, source="squeue",
        )
    return out


_KEY = re.compile(r"(?:(?<=\s)|^)([A-Za-z][A-Za-z0-9_:/]*)=")


def parse_key_values(text: str) -> dict[str, str]:
    """Return ``Key=Value`` pairs from ``scontrol``/jobcomp text (values may be empty; later keys win)."""
    matches = list(_KEY.finditer(text))
    pairs: dict[str, str] = {}
    for m, nxt in zip(matches, [*matches[1:], None][:len(matches)], strict=True):
        pairs[m.group(1)] = text[m.end(): nxt.start() if nxt else len(text)].strip()
    return pairs


def _kv_status(kv: dict[str, str], source: str, job_id: str | None = None) -> JobStatus:
    job_id = kv.get("JobId", job_id)
    if not job_id:
        raise SchedulerParseError(f"{source} record (no JobId=)", " ".join(f"{k}={v}" for k, v in kv.items()))
    state = SlurmState.parse(kv.get("JobState"))
    code, sig = parse_exit_code(kv.get("ExitCode"))
    submit, start = _time(kv.get("SubmitTime")), _time(kv.get("StartTime"))
    end = _time(kv.get("EndTime")) if state.is_terminal else None  # else a projection
    elapsed = parse_duration(kv["RunTime"]) if "RunTime" in kv else (
        (end - start).total_seconds() if end and start else None)
    requeue = kv.get("Requeue")
    return JobStatus(
        job_id=job_id, state=state, exit_code=code, signal=sig, elapsed_s=elapsed,
        queue_wait_s=_queue_wait(state, submit, start), node_list=_text(kv.get("NodeList")),
        partition=_text(kv.get("Partition")), reason=_text(kv.get("Reason")),
        submit_time=submit, start_time=start if state is not SlurmState.PENDING else None,
        end_time=end, requeue=None if requeue is None else requeue == "1",
        raw_state=kv.get("JobState", ""), source=source,
    )


def status_from_fields(fields: dict[str, str], source: str) -> JobStatus:
    """Return the status of one job from scontrol-named ``fields`` (``JobId``, ``JobState``, ``ExitCode``, ...)."""
    return _kv_status(fields, source)


def _records(text: str) -> Iterable[str]:
    return (chunk for chunk in re.split(r"(?m)^(?=\s*JobId=)", text) if "JobId=" in chunk)


def parse_scontrol_jobs(text: str) -> dict[str, JobStatus]:
    """Return one status per job from ``scontrol [-o] show job [id]`` text (one or many records)."""
    out: dict[str, JobStatus] = {}
    for chunk in _records(text):
        status = _kv_status(parse_key_values(chunk), "scontrol")
        out[status.job_id] = status
    return out


def job_ids_with_comment(text: str, comment: str) -> list[str]:
    """Return, in order, the ids of the jobs whose comment is exactly ``comment`` in ``scontrol [-o] show job``
    records or ``sacct -P -o JobID,Comment`` lines."""
    if "JobId=" in text:
        records = (parse_key_values(chunk) for chunk in _records(text))
        return [kv["JobId"] for kv in records if kv.get("Comment") == comment and kv.get("JobId")]
    rows = (line.split("|", 1) for line in text.splitlines() if "|" in line)
    return [job_id for job_id, found in rows if found.strip() == comment and "." not in job_id]


def parse_scontrol_job(text: str, job_id: str | None = None) -> JobStatus:
    """Return the status of the single job described by ``scontrol show job <id>`` text.

    ``job_id`` names the job when ``text`` is an excerpt without its ``JobId=`` line.

    Raises:
        SchedulerParseError: no ``JobState=`` in ``text``, or no job id in it nor given.
    """
    jobs = parse_scontrol_jobs(text)
    if jobs:
        return next(iter(jobs.values()))
    kv = parse_key_values(text)
    if "JobState" not in kv:
        raise SchedulerParseError("scontrol show job", text)
    return _kv_status(kv, "scontrol", job_id)


def parse_jobcomp(text: str) -> dict[str, JobStatus]:
    """Return one status per job from ``jobcomp/filetxt`` lines (the last line for a job id wins)."""
    out: dict[str, JobStatus] = {}
    for line in text.splitlines():
        if "JobId=" in line:
            status = _kv_status(parse_key_values(line), "jobcomp")
            out[status.job_id] = status
    return out
