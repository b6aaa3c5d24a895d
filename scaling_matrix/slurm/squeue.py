"""``squeue --states=all --Format=...``: every job the controller holds, with its final facts. Pure.

One ``squeue -h -t all -j a,b,c -O <fields>`` is ONE slurmctld RPC (the same one a plain ``squeue``
loop makes) and reports queued, running and, for ``MinJobAge`` after their end (default 300 s),
ended jobs with state, exit code, times and nodes: what ``scontrol show job`` reports, for every
job at once. ``exit_code`` is the raw wait status (``256`` = exit 1, ``15`` = signal 15, ``35072``
= exit 137); it is read as ``status:signal`` like scontrol's ``ExitCode``.

Fields are printed unpadded and untruncated (``Field:|``: no width, ``|`` as suffix), so job names
or reasons of any length never break the columns; a field never contains ``|`` except the reason
text, which is the last but one and read from both ends.
"""

from __future__ import annotations

from scaling_matrix.errors import SchedulerParseError
from scaling_matrix.slurm.status import JobStatus
from scaling_matrix.slurm.text import status_from_fields

#: ``squeue -O`` fields, in the order :func:`parse_squeue_all` reads them, with scontrol's key names.
SQUEUE_ALL_FIELDS: tuple[tuple[str, str], ...] = (
    ("JobID", "JobId"), ("State", "JobState"), ("exit_code", "ExitCode"), ("TimeUsed", "RunTime"),
    ("NodeList", "NodeList"), ("Partition", "Partition"), ("SubmitTime", "SubmitTime"),
    ("StartTime", "StartTime"), ("EndTime", "EndTime"), ("Requeue", "Requeue"), ("Reason", "Reason"),
)
#: The ``--Format`` argument: every field unpadded, ``|`` after each.
SQUEUE_ALL_FORMAT = ",".join(f"{name}:|" for name, _ in SQUEUE_ALL_FIELDS)


def squeue_all_argv(job_ids: list[str]) -> list[str]:
    """Return the argv of one ``squeue`` for every state of ``job_ids``."""
    return ["squeue", "-h", "-t", "all", "-O", SQUEUE_ALL_FORMAT, "-j", ",".join(job_ids)]


def wait_status(raw: str) -> str:
    """Return squeue's raw ``exit_code`` (a wait status) as ``status:signal`` (``""`` if not a number)."""
    if not raw.strip().isdigit():
        return ""
    value = int(raw)
    return f"{(value >> 8) & 0xFF}:{value & 0x7F}"


def parse_squeue_all(text: str) -> dict[str, JobStatus]:
    """Return one status per job from ``squeue -h -t all -O SQUEUE_ALL_FORMAT`` text (source ``squeue``).

    Raises:
        SchedulerParseError: a line has fewer fields than asked for.
    """
    out: dict[str, JobStatus] = {}
    n = len(SQUEUE_ALL_FIELDS)
    for line in text.splitlines():
        if not line.strip():
            continue
        values = line.rstrip("\n").split("|")
        if values and values[-1] == "":
            values.pop()  # the suffix after the last field
        if len(values) < n:
            raise SchedulerParseError(f"squeue line ({SQUEUE_ALL_FORMAT})", line)
        values = [*values[:n - 1], "|".join(values[n - 1:])]  # a reason containing '|'
        kv = {key: value.strip() for (_, key), value in zip(SQUEUE_ALL_FIELDS, values, strict=True)}
        kv["ExitCode"] = wait_status(kv["ExitCode"])
        kv["Requeue"] = "1" if kv["Requeue"] not in ("0", "") else "0"
        status = status_from_fields(kv, "squeue")
        out[status.job_id] = status
    return out


__all__ = ["SQUEUE_ALL_FIELDS", "SQUEUE_ALL_FORMAT", "parse_squeue_all", "squeue_all_argv", "wait_status"]
