"""Secrets end to end: a real run on SLURM through a real Prefect server with an HF token in the environment
(passed through to the job by sbatch, ``container.env_passthrough``) and the results in PostgreSQL with a
password (``SCALING_DB_URL``). Afterwards every log, rendered script, SLURM record, DB row, Prefect
artifact, flow-run parameter, task-run input and API log line is scanned: 0 occurrences. The job proves
it received the token (a probe writes its SHA-256); a negative control plants the token in a file, a DB
row and an artifact and the same scanner finds exactly those."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import ArtifactCreate
from prefect.settings import PREFECT_API_URL, temporary_settings
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.chaos import secret_scan as scan
from tests.chaos.conftest import FIX, Server, ledger_jobs, record, start_run, write_profile
from tests.storage.conftest import pg_base_url

pytestmark = [pytest.mark.slurm, pytest.mark.server, pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture
def pg_url() -> Iterator[str]:
    """Yield the URL (with the real password) of a fresh schema of the test PostgreSQL."""
    base, schema = pg_base_url(), f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield make_url(base).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _profile(tmp_path: Path) -> str:
    path = Path(write_profile(tmp_path, "noise@2", nodelist=None))
    data = yaml.safe_load(path.read_text())
    data["executable"] = [sys.executable, str(FIX / "token_probe.py")]
    data["container"] = {"env_passthrough": ["HF_TOKEN"]}
    path.write_text(yaml.safe_dump(data))
    return str(path)


def _corpus(server: Server, home: Path, run_log: Path, url: str, tmp_path: Path) -> dict[str, bytes]:
    jobs = [str(j) for j in _ledger(url)]
    return {**scan.file_corpus([home, run_log, server.home]), **scan.slurm_corpus(jobs, tmp_path),
            **scan.db_corpus(url), **scan.api_corpus(server.api_url)}


def _ledger(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [r[0] for r in conn.execute(text("SELECT job_id FROM attempts WHERE job_id IS NOT NULL"))]
    finally:
        engine.dispose()


async def _plant_artifact(token: str) -> None:
    async with get_client() as client:
        await client.create_artifact(ArtifactCreate(key="planted-secret", type="markdown", data=f"oops {token}"))


def _plant(server: Server, home: Path, url: str, token: str) -> None:
    (home / "runs" / "planted.log").write_text(f"HF_TOKEN={token}\n")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE cells SET reason = :r"), {"r": f"leaked {token}"})
    engine.dispose()
    with temporary_settings({PREFECT_API_URL: server.api_url}):
        asyncio.run(_plant_artifact(token))


def test_no_secret_anywhere_after_a_real_run(chaos_server: Server, home: Path, tmp_path: Path, pg_url: str) -> None:
    token = "hf_" + secrets.token_urlsafe(30).replace("-", "x").replace("_", "y")[:34]
    password = make_url(pg_url).password or ""
    assert len(password) >= 12, "the test PostgreSQL needs a real password for this test"
    run = start_run(chaos_server, home, _profile(tmp_path), name="secrets",
                    env={"HF_TOKEN": token, "SCALING_DB_URL": pg_url})
    assert run.wait() == 0, run.tail()
    (probe,) = home.glob("runs/*/*/hf_token.sha256")
    assert probe.read_text().strip() == hashlib.sha256(token.encode()).hexdigest()  # the job had the token
    corpus = _corpus(chaos_server, home, run.log, pg_url, tmp_path)
    assert any(k.startswith("file:") and k.endswith("job.sbatch") for k in corpus)
    assert any(k.startswith("artifact:") for k in corpus) and any(k.startswith("db:cells") for k in corpus)
    found = scan.occurrences({"HF token": token, "PostgreSQL password": password}, corpus)
    assert found == {"HF token": [], "PostgreSQL password": []}, found
    _plant(chaos_server, home, pg_url, token)  # negative control: the scanner sees what is there
    planted = scan.occurrences({"HF token": token}, _corpus(chaos_server, home, run.log, pg_url, tmp_path))
    kinds = sorted({k.split(":")[0] for k in planted["HF token"]})
    assert kinds == ["artifact", "db", "file"], planted
    assert len(ledger_jobs(home)) == 0  # results went to PostgreSQL, not to a SQLite file
    record("secrets", f"scanned {len(corpus)} items ({_counts(corpus)}): HF token 0, PostgreSQL password 0; "
                      f"planted token found in {len(planted['HF token'])} places ({', '.join(kinds)})")


def _counts(corpus: dict[str, bytes]) -> str:
    kinds: dict[str, int] = {}
    for key in corpus:
        kind = key.split(":")[0]
        kinds[kind] = kinds.get(kind, 0) + 1
    return ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
