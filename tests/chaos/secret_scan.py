"""Collect everything a run leaves behind and count where a secret appears in it (for the secrets scan).

Channels: every file under the run's $SCALING_HOME (logs, rendered ``job.sbatch``, ``command.sh``,
``argv.json``, memory CSVs, summaries), the CLI's own output, the Prefect server's log and its raw
database file, SLURM's record of each job (``scontrol show job``, the stored batch script, ``sacct``),
every row of the results database, and through the Prefect API every artifact, flow-run parameter,
task-run input and log line.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_URL, temporary_settings
from sqlalchemy import create_engine, inspect, text


def file_corpus(roots: Iterable[Path]) -> dict[str, bytes]:
    """Return {path: bytes} of every regular file under ``roots`` (files themselves included)."""
    out: dict[str, bytes] = {}
    for root in roots:
        paths = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()]
        for path in paths:
            try:
                out[f"file:{path}"] = path.read_bytes()
            except OSError:
                continue
    return out


def slurm_corpus(job_ids: Iterable[str], tmp: Path) -> dict[str, bytes]:
    """Return SLURM's own record of each job: ``scontrol show job``, its stored batch script, ``sacct``."""
    out: dict[str, bytes] = {}
    for job in job_ids:
        shown = subprocess.run(["scontrol", "-dd", "show", "job", job], capture_output=True).stdout
        script = tmp / f"batch-{job}.sh"
        subprocess.run(["scontrol", "write", "batch_script", job, str(script)], capture_output=True)
        acct = subprocess.run(["sacct", "-P", "-j", job, "-o", "JobID,JobName,WorkDir,Comment,SubmitLine,Reason"],
                              capture_output=True).stdout
        out[f"slurm:{job}:scontrol"], out[f"slurm:{job}:sacct"] = shown, acct
        out[f"slurm:{job}:batch_script"] = script.read_bytes() if script.exists() else b""
    return out


def db_corpus(url: str) -> dict[str, bytes]:
    """Return every row of every table of the results database at ``url``, as text."""
    engine = create_engine(url)
    out: dict[str, bytes] = {}
    try:
        with engine.connect() as conn:
            for table in inspect(conn).get_table_names():
                for i, row in enumerate(conn.execute(text(f'SELECT * FROM "{table}"'))):
                    out[f"db:{table}:{i}"] = repr(tuple(row)).encode()
    finally:
        engine.dispose()
    return out


async def _every(read: Callable[..., Awaitable[list[Any]]], page: int = 200) -> list[Any]:
    """Return every record ``read`` pages through (``limit``/``offset``), not only the first page."""
    out: list[Any] = []
    while batch := await read(limit=page, offset=len(out)):
        out += batch
        if len(batch) < page:
            break
    return out


async def _api() -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    async with get_client() as client:
        for a in await _every(client.read_artifacts):
            out[f"artifact:{a.key}:{a.id}"] = f"{a.data!r} {a.description!r} {a.metadata_!r}".encode()
        for fr in await _every(client.read_flow_runs):
            out[f"flow_run:{fr.id}:parameters"] = repr(fr.parameters).encode()
            out[f"flow_run:{fr.id}:state"] = repr(fr.state.message if fr.state else "").encode()
        for tr in await _every(client.read_task_runs):
            out[f"task_run:{tr.id}"] = f"{tr.task_inputs!r} {tr.state.message if tr.state else ''!r}".encode()
        logs = await _every(client.read_logs)
        out["api_logs"] = "\n".join(log.message for log in logs).encode()
    return out


def api_corpus(api_url: str) -> dict[str, bytes]:
    """Return every artifact, flow-run parameter set, task-run input and log line the Prefect API holds."""
    with temporary_settings({PREFECT_API_URL: api_url}):
        return asyncio.run(_api())


def occurrences(secrets: dict[str, str], corpus: dict[str, bytes]) -> dict[str, list[str]]:
    """Return {secret name: [channels holding it]}: the whole value, or its first 12 characters (a cut-off
    copy counts too)."""
    found: dict[str, list[str]] = {}
    for name, value in secrets.items():
        needles = {value.encode(), value[:12].encode()}
        found[name] = sorted(k for k, blob in corpus.items() if any(n in blob for n in needles))
    return found
