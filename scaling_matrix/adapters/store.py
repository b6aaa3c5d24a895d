"""Results store: SQLAlchemy 2.0 ORM behind a small repository. SQLite by default, PostgreSQL to share.

Tables: ``runs`` (one per orchestrated matrix run, with user, cluster and provenance), ``cells``
(one row per cell per run; a failed or cancelled cell is a row too) and ``attempts`` (every launch
attempt; also the job ledger that lets a resumed run re-attach instead of resubmitting).

The schema is managed by alembic (``scaling_matrix/migrations``): opening a store upgrades the
database to head once per process and URL, and refuses a database newer than this code.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, select
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from scaling_matrix.adapters.db_retry import retried
from scaling_matrix.adapters.schema import AttemptRow, Base, CellRow, RunRow
from scaling_matrix.config.secrets import redact
from scaling_matrix.errors import StoreError
from scaling_matrix.migrations import head_revision, upgrade_to_head
from scaling_matrix.records import CellResult, CellStatus, RunInfo, StoredAttempt, StoredCell

#: Alembic revision the code expects; every open store is upgraded to it (or refuses to open).
SCHEMA_VERSION = head_revision()


_CELL_COLUMNS = {c.name for c in CellRow.__table__.columns} - {"id", "provenance", "metrics"}
_ENGINES: dict[str, Engine] = {}
_READY: set[str] = set()
_LOCK = threading.Lock()
#: How long one SQLite statement waits for another writer (sqlite3's default); past it (200 cells writing
#: their ledger rows at once on 2 busy cores did) each store call is retried with back-off by ``db_retry``.
SQLITE_BUSY_TIMEOUT_S = 5.0


def _now() -> datetime:
    return datetime.now(UTC)


def _engine(url: str) -> Engine:
    """Return the process-wide engine of ``url``, its schema upgraded to head on first use."""
    with _LOCK:
        engine = _ENGINES.get(url)
        if engine is None:
            sqlite = make_url(url).drivername.startswith("sqlite")
            engine = _ENGINES[url] = create_engine(url, pool_pre_ping=True,
                                                   connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S} if sqlite else {})
        if url not in _READY:
            upgrade_to_head(engine)
            _READY.add(url)
        return engine


class ResultsStore:
    """Repository over the results database; every method opens its own short session, retried through a
    busy SQLite writer lock or a dropped PostgreSQL connection (``db_retry``: each call is idempotent)."""

    def __init__(self, url: str) -> None:
        parsed = make_url(url)
        if parsed.drivername.startswith("sqlite") and parsed.database not in (None, "", ":memory:"):
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        self.url = url
        try:
            self.engine = _engine(url)
        except (SQLAlchemyError, ImportError, OSError) as exc:  # never a traceback, never the password
            shown = parsed.render_as_string(hide_password=True)
            raise StoreError(f"results database {shown}: cannot be opened ({type(exc).__name__}: "
                             f"{redact(str(exc).splitlines()[0] if str(exc) else '')[:200]}) (fix: check "
                             "SCALING_DB_URL or the database block, its driver, and that the server is reachable)"
                             ) from None
        self.schema_version = SCHEMA_VERSION
        self._session = sessionmaker(self.engine, expire_on_commit=False)

    def __repr__(self) -> str:
        return f"ResultsStore({make_url(self.url)!s})"  # str() of a URL masks the password

    def session(self) -> Session:
        """Return a new session (use as a context manager)."""
        return self._session()

    @retried
    def create_run(self, info: RunInfo) -> None:
        """Insert the run row of ``info`` unless it already exists (resume keeps the original)."""
        with self.session() as s, s.begin():
            if s.get(RunRow, info.run_id) is None:
                p = info.profile
                s.add(RunRow(run_id=info.run_id, matrix=info.matrix, profile=p.name,
                             cluster=p.cluster, workload=p.workload, device=p.device,
                             user=info.user, git_rev=info.git_rev, created_at=info.created_at,
                             profile_json=json.loads(p.model_dump_json()),
                             provenance=_profile_provenance(info)))

    @retried
    def set_provenance(self, run_id: str, fields: Mapping[str, Any],
                       cell_id: str | None = None) -> None:
        """Merge ``fields`` (None values dropped) into the provenance of a run or one of its cells."""
        with self.session() as s, s.begin():
            row: RunRow | CellRow | None
            if cell_id is None:
                row = s.get(RunRow, run_id)
            else:
                row = s.scalar(select(CellRow).where(CellRow.run_id == run_id, CellRow.cell_id == cell_id))
            if row is None:
                raise StoreError(f"no run {run_id}" + (f" cell {cell_id}" if cell_id else ""))
            merged = dict(row.provenance or {})
            merged.update({k: v for k, v in fields.items() if v is not None})
            row.provenance = merged

    @retried
    def finish_run(self, run_id: str, status: str, flow_run_id: str | None = None) -> None:
        """Mark a run finished with ``status``."""
        with self.session() as s, s.begin():
            row = s.get(RunRow, run_id)
            if row is not None:
                row.status, row.finished_at = status, _now()
                row.flow_run_id = flow_run_id or row.flow_run_id

    @retried
    def cancel_unfinished_cells(self, run_id: str, reason: str) -> list[str]:
        """Store every cell of ``run_id`` still pending or running as ``cancelled`` (class
        ``cancelled``, ``reason``); return their ids. Final cells are left as they are."""
        with self.session() as s, s.begin():
            rows = s.scalars(select(CellRow).where(CellRow.run_id == run_id,
                                                   CellRow.status.in_((CellStatus.PENDING.value, CellStatus.RUNNING.value))))
            changed = []
            for row in rows:
                row.status, row.failure_class, row.finished_at = CellStatus.CANCELLED.value, "cancelled", _now()
                row.reason = (f"{reason}; {row.reason}" if row.reason else reason)[:2000]
                changed.append(row.cell_id)
            return changed

    @retried
    def save_cell(self, result: CellResult) -> None:
        """Insert or update the row of one cell result (NaN/inf metrics are stored as NULL everywhere)."""
        values = {k: _finite(v) for k, v in result.flat().items() if k in _CELL_COLUMNS}
        values.update(started_at=result.started_at, finished_at=result.finished_at,
                      cell_dir=result.cell_dir, command=result.command,
                      config_json=json.loads(result.cell.model_dump_json()),
                      metrics={k: _finite(v) for k, v in asdict(result.metrics).items()})
        with self.session() as s, s.begin():
            row = s.scalar(select(CellRow).where(CellRow.run_id == result.run_id,
                                                 CellRow.cell_id == result.cell.key))
            if row is None:
                s.add(CellRow(**values))
            else:
                for k, v in values.items():
                    setattr(row, k, v)

    @retried
    def record_attempt(self, run_id: str, cell_id: str, attempt: int, **fields: Any) -> None:
        """Insert or update one attempt row (fields: job_id, status, failure_class, ...)."""
        with self.session() as s, s.begin():
            row = s.scalar(select(AttemptRow).where(
                AttemptRow.run_id == run_id, AttemptRow.cell_id == cell_id, AttemptRow.attempt == attempt))
            if row is None:
                row = AttemptRow(run_id=run_id, cell_id=cell_id, attempt=attempt, started_at=_now())
                s.add(row)
            for k, v in fields.items():
                setattr(row, k, v)

    @retried
    def attempts(self, run_id: str, cell_id: str | None = None) -> list[dict[str, Any]]:
        """Return the attempt rows of a run (optionally one cell), oldest first."""
        q = select(AttemptRow).where(AttemptRow.run_id == run_id)
        if cell_id is not None:
            q = q.where(AttemptRow.cell_id == cell_id)
        with self.session() as s:
            return [_as_dict(r) for r in s.scalars(q.order_by(AttemptRow.id))]

    @retried
    def cells(self, run_id: str) -> list[dict[str, Any]]:
        """Return the cell rows of ``run_id`` as flat dicts (report rows)."""
        with self.session() as s:
            rows = s.scalars(select(CellRow).where(CellRow.run_id == run_id).order_by(CellRow.id))
            return [_as_dict(r) for r in rows]

    def cell_states(self, run_id: str) -> list[StoredCell]:
        """Return the cells of ``run_id`` as typed rows (status as :class:`CellStatus`), in plan order."""
        return [StoredCell.from_row(c) for c in self.cells(run_id)]

    def attempt_rows(self, run_id: str, cell_id: str | None = None) -> list[StoredAttempt]:
        """Return the job ledger of ``run_id`` (optionally one cell) as typed rows, oldest first."""
        return [StoredAttempt.from_row(a) for a in self.attempts(run_id, cell_id)]

    @retried
    def run(self, run_id: str) -> dict[str, Any] | None:
        """Return the run row of ``run_id`` as a dict, or None."""
        with self.session() as s:
            row = s.get(RunRow, run_id)
            return _as_dict(row) if row else None

    @retried
    def last_run_id(self) -> str | None:
        """Return the id of the most recently created run, or None when there is none."""
        with self.session() as s:
            return s.scalar(select(RunRow.run_id).order_by(RunRow.created_at.desc()).limit(1))

    @retried
    def runs(self, limit: int = 20) -> list[dict[str, Any]]:
        """Return the newest ``limit`` runs as dicts."""
        with self.session() as s:
            q = select(RunRow).order_by(RunRow.created_at.desc()).limit(limit)
            return [_as_dict(r) for r in s.scalars(q)]

    @retried
    def history(self, cell_ids: Iterable[str] | None = None, *, cluster: str | None = None,
                until: datetime | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """Return completed cell rows joined with their run, oldest run first.

        Each row is a cell dict plus ``created_at`` (the run's), ``user``, ``git_rev``, ``matrix``
        and ``provenance`` (run provenance, git_rev, user and cluster, overlaid by the cell's).

        Args:
            cell_ids: only these cells (default: every cell).
            cluster: only cells measured on this cluster.
            until: only runs created at or before this time.
            limit: keep only the newest ``limit`` rows (per query, before ordering oldest first).
        """
        q = (select(CellRow, RunRow).join(RunRow, CellRow.run_id == RunRow.run_id)
             .where(CellRow.status == CellStatus.COMPLETED.value))
        if cell_ids is not None:
            q = q.where(CellRow.cell_id.in_(sorted(set(cell_ids))))
        if cluster is not None:
            q = q.where(CellRow.cluster == cluster)
        if until is not None:
            q = q.where(RunRow.created_at <= until)
        q = q.order_by(RunRow.created_at.desc(), CellRow.id.desc())
        if limit is not None:
            q = q.limit(limit)
        with self.session() as s:
            rows = [_history_row(cell, run) for cell, run in s.execute(q).all()]
        return rows[::-1]

    def close(self) -> None:
        """Close this store's pooled connections (see :meth:`release`)."""
        ResultsStore.release(self.url)

    @staticmethod
    def release(url: str) -> None:
        """Dispose of the process-wide engine of ``url``; the next store re-opens (and re-checks) it."""
        with _LOCK:
            engine = _ENGINES.pop(url, None)
            _READY.discard(url)
        if engine is not None:
            engine.dispose()


def _profile_provenance(info: RunInfo) -> dict[str, Any]:
    """Return the provenance known when a run starts: profile facts and the project revision."""
    p = info.profile
    facts = {"git_rev": info.git_rev, "cluster": p.cluster, "user": info.user,
             "container_runtime": p.container.runtime if p.container.runtime != "none" else None,
             "container_image": p.container.image,
             "partition": p.slurm.partition if p.slurm else None}
    return {k: v for k, v in facts.items() if v is not None}


def _history_row(cell: CellRow, run: RunRow) -> dict[str, Any]:
    row = _as_dict(cell)
    provenance = {"git_rev": run.git_rev, "cluster": run.cluster, "user": run.user}
    provenance.update(run.provenance or {})
    provenance.update(cell.provenance or {})
    row.update(created_at=_utc(run.created_at), user=run.user, git_rev=run.git_rev,
               matrix=run.matrix, provenance={k: v for k, v in provenance.items() if v is not None})
    return row


def _utc(value: Any) -> Any:
    """Return datetimes timezone-aware in UTC (SQLite hands back naive ones); others unchanged."""
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _finite(value: Any) -> Any:
    """Return ``value`` with NaN/inf floats as None (PostgreSQL JSON has no NaN)."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _as_dict(row: Base) -> dict[str, Any]:
    """Return a row as a dict; a cell's ``metrics`` JSON is flattened in (columns win)."""
    out = {c.name: _utc(getattr(row, c.name)) for c in row.__table__.columns}
    extra = out.pop("metrics", None) if isinstance(row, CellRow) else None
    for key, value in (extra or {}).items():
        out.setdefault(key, value)
    return out


__all__ = ["AttemptRow", "CellRow", "ResultsStore", "RunRow", "SCHEMA_VERSION"]
