"""Storage fixtures: every store test runs on SQLite and on a real PostgreSQL.

PostgreSQL comes from ``$SCALING_TEST_PG_URL`` (``scripts/local-postgres.sh up`` prints one); each
test gets its own schema (``search_path``), dropped afterwards. Without the variable the
PostgreSQL cases skip locally and FAIL when ``CI=true``.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from scaling_matrix.adapters.store import ResultsStore

PG_ENV = "SCALING_TEST_PG_URL"


def pg_base_url() -> str:
    """Return the PostgreSQL test URL, or skip (fail under CI=true) when it is not configured."""
    url = os.environ.get(PG_ENV)
    if not url:
        msg = f"{PG_ENV} not set (run: export {PG_ENV}=\"$(scripts/local-postgres.sh up)\")"
        if os.environ.get("CI") == "true":
            pytest.fail(msg + "; CI=true, so PostgreSQL storage tests must not skip")
        pytest.skip(msg)
    return url


@contextmanager
def fresh_pg_schema(**query: str) -> Iterator[str]:
    """Yield a URL whose search_path is a fresh, empty schema of the test PostgreSQL (``query``: more URL
    query parameters, e.g. an ``application_name`` to find the connections by); drop the schema after."""
    base = pg_base_url()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}", **query})
    rendered = url.render_as_string(hide_password=False)
    try:
        yield rendered
    finally:
        ResultsStore.release(rendered)
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def pg_schema_url() -> Iterator[str]:
    """Yield a URL whose search_path is a fresh, empty schema of the test PostgreSQL."""
    with fresh_pg_schema() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    """Return the backend name of this parametrisation."""
    return str(request.param)


@pytest.fixture
def db_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """Yield an empty results database URL on ``backend`` (SQLite file or PostgreSQL schema)."""
    if backend == "sqlite":
        (tmp_path / "db").mkdir()
        url = f"sqlite:///{tmp_path / 'db' / 'results.db'}"
        yield url
        ResultsStore.release(url)
    else:
        yield request.getfixturevalue("pg_schema_url")
