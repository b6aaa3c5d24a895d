"""Alembic migrations of the results schema, shipped inside the package (no alembic.ini).

``upgrade_to_head(engine)`` brings any database to the newest revision: a fresh one gets every
revision, one created by the pre-alembic ``create_all`` (tables but no ``alembic_version``) is
stamped ``0001_initial`` first, and one written by a newer scaling-matrix (an unknown revision)
is refused with a ``StoreError`` instead of being touched.

New revision (developers)::

    from alembic import command
    from scaling_matrix.migrations import alembic_config
    command.revision(alembic_config(), message="what changed", rev_id="0003_what_changed")
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError, ProgrammingError

from scaling_matrix.errors import StoreError

MIGRATIONS_DIR = Path(__file__).resolve().parent
INITIAL_REVISION = "0001_initial"
_PG_LOCK_KEY = 0x5CA1E  # advisory lock: one upgrader at a time on a shared PostgreSQL


def alembic_config(connection: Connection | None = None) -> Config:
    """Return an alembic Config whose script location is this package (optionally bound)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    return cfg


@lru_cache(maxsize=1)
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    """Return the newest revision id this code knows (the expected schema version)."""
    head = _scripts().get_current_head()
    if head is None:  # pragma: no cover - the package always ships revisions
        raise StoreError(f"no alembic revisions under {MIGRATIONS_DIR}")
    return head


def known_revisions() -> set[str]:
    """Return every revision id shipped with this code."""
    return {s.revision for s in _scripts().walk_revisions()}


def current_revision(connection: Connection) -> str | None:
    """Return the database's revision (None for an empty or pre-alembic database)."""
    return MigrationContext.configure(connection).get_current_revision()


def _upgrade_once(engine: Engine) -> str:
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
        current = current_revision(conn)
        if current == head_revision():
            return current
        if current is not None and current not in known_revisions():
            raise StoreError(f"results database is at schema revision {current!r}, newer than this "
                             f"scaling-matrix knows (head {head_revision()!r}); upgrade scaling-matrix")
        cfg = alembic_config(conn)
        if current is None and inspect(conn).has_table("runs"):
            command.stamp(cfg, INITIAL_REVISION)  # created by create_all before migrations existed
        command.upgrade(cfg, "head")
        return current_revision(conn) or ""


def upgrade_to_head(engine: Engine) -> str:
    """Return the schema revision after upgrading ``engine``'s database to head.

    Raises:
        StoreError: the database is newer than this code, or still not at head afterwards.

    Note:
        Two processes opening a fresh SQLite file at once can race on ``CREATE TABLE``; the loser
        retries once and then finds the schema at head. PostgreSQL serialises on an advisory lock.
    """
    try:
        revision = _upgrade_once(engine)
    except (OperationalError, ProgrammingError):
        revision = _upgrade_once(engine)
    if revision != head_revision():
        raise StoreError(f"results schema at {revision!r} after upgrade, expected {head_revision()!r}")
    return revision


__all__ = ["INITIAL_REVISION", "MIGRATIONS_DIR", "alembic_config", "current_revision", "head_revision",
           "known_revisions", "upgrade_to_head"]
