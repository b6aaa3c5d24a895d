"""Results store: SQLAlchemy 2.0 ORM behind a small repository. SQLite by default.

Tables: ``runs`` (one per orchestrated matrix run), ``cells`` (one row per cell per run; a failed
or cancelled cell is a row too) and ``attempts`` (every launch attempt; also the job ledger that
lets a resumed run re-attach instead of resubmitting).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (JSON, Boolean, DateTime, Float, ForeignKey, Integer, String, Text,
                        UniqueConstraint, create_engine, select)
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from scaling_matrix.records import CellResult, RunInfo

SCHEMA_VERSION = 1


class Base(DeclarativeBase):
    """Declarative base of the results schema."""


class RunRow(Base):
    """One matrix run."""

    __tablename__ = "runs"
    run_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    matrix: Mapped[str] = mapped_column(String(200))
    profile: Mapped[str] = mapped_column(String(100))
    cluster: Mapped[str] = mapped_column(String(100))
    workload: Mapped[str] = mapped_column(String(20))
    device: Mapped[str] = mapped_column(String(20))
    user: Mapped[str] = mapped_column(String(100))
    git_rev: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20), default="running")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    flow_run_id: Mapped[str | None] = mapped_column(String(64))
    profile_json: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


_METRIC_FLOATS = ["first_loss", "final_loss", "last_val_loss", "step_time_s", "median_step_time_s",
                  "mean_step_time_s", "wall_clock_s", "peak_mem_mib", "avg_mem_mib", "mode_mem_mib",
                  "all_peak_mem_mib"]


class CellRow(Base):
    """One cell of one run, with its final status and metrics."""

    __tablename__ = "cells"
    __table_args__ = (UniqueConstraint("run_id", "cell_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.run_id"), index=True)
    cell_id: Mapped[str] = mapped_column(String(200))
    model: Mapped[str] = mapped_column(String(100))
    track: Mapped[str] = mapped_column(String(30))
    gpus: Mapped[int] = mapped_column(Integer)
    nodes: Mapped[int] = mapped_column(Integer)
    tp: Mapped[int] = mapped_column(Integer)
    pp: Mapped[int] = mapped_column(Integer)
    cp: Mapped[int] = mapped_column(Integer)
    ep: Mapped[int] = mapped_column(Integer)
    sp: Mapped[bool] = mapped_column(Boolean)
    dp: Mapped[int] = mapped_column(Integer)
    peft: Mapped[str] = mapped_column(String(10))
    global_batch_size: Mapped[int] = mapped_column(Integer)
    micro_batch_size: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))
    failure_class: Mapped[str | None] = mapped_column(String(30))
    reason: Mapped[str] = mapped_column(Text, default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    exit_code: Mapped[int | None] = mapped_column(Integer)
    job_id: Mapped[str | None] = mapped_column(String(64))
    workload: Mapped[str] = mapped_column(String(20))
    device: Mapped[str] = mapped_column(String(20))
    cluster: Mapped[str] = mapped_column(String(100))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cell_dir: Mapped[str | None] = mapped_column(Text)
    command: Mapped[str | None] = mapped_column(Text)
    config_json: Mapped[dict[str, Any]] = mapped_column(JSON)
    steps_logged: Mapped[int] = mapped_column(Integer, default=0)
    last_step: Mapped[int | None] = mapped_column(Integer)
    max_steps: Mapped[int | None] = mapped_column(Integer)
    reached_last_step: Mapped[bool] = mapped_column(Boolean, default=False)
    first_loss: Mapped[float | None] = mapped_column(Float)
    final_loss: Mapped[float | None] = mapped_column(Float)
    last_val_loss: Mapped[float | None] = mapped_column(Float)
    step_time_s: Mapped[float | None] = mapped_column(Float)
    median_step_time_s: Mapped[float | None] = mapped_column(Float)
    mean_step_time_s: Mapped[float | None] = mapped_column(Float)
    wall_clock_s: Mapped[float | None] = mapped_column(Float)
    peak_mem_mib: Mapped[float | None] = mapped_column(Float)
    avg_mem_mib: Mapped[float | None] = mapped_column(Float)
    mode_mem_mib: Mapped[float | None] = mapped_column(Float)
    all_peak_mem_mib: Mapped[float | None] = mapped_column(Float)


class AttemptRow(Base):
    """One launch attempt of a cell (job ledger: written around each submission)."""

    __tablename__ = "attempts"
    __table_args__ = (UniqueConstraint("run_id", "cell_id", "attempt"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.run_id"), index=True)
    cell_id: Mapped[str] = mapped_column(String(200))
    attempt: Mapped[int] = mapped_column(Integer)
    job_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20), default="submitting")
    failure_class: Mapped[str | None] = mapped_column(String(30))
    reason: Mapped[str] = mapped_column(Text, default="")
    exit_code: Mapped[int | None] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


_CELL_COLUMNS = {c.name for c in CellRow.__table__.columns} - {"id"}


def _now() -> datetime:
    return datetime.now(UTC)


class ResultsStore:
    """Repository over the results database; every method opens its own short session."""

    def __init__(self, url: str) -> None:
        parsed = make_url(url)
        if parsed.drivername.startswith("sqlite") and parsed.database not in (None, "", ":memory:"):
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        self.url = url
        self.engine = create_engine(url, future=True)
        Base.metadata.create_all(self.engine)
        self._session = sessionmaker(self.engine, expire_on_commit=False)

    def session(self) -> Session:
        """Return a new session (use as a context manager)."""
        return self._session()

    def create_run(self, info: RunInfo) -> None:
        """Insert the run row of ``info`` unless it already exists (resume keeps the original)."""
        with self.session() as s, s.begin():
            if s.get(RunRow, info.run_id) is None:
                p = info.profile
                s.add(RunRow(run_id=info.run_id, matrix=info.matrix, profile=p.name,
                             cluster=p.cluster, workload=p.workload, device=p.device,
                             user=info.user, git_rev=info.git_rev, created_at=info.created_at,
                             profile_json=json.loads(p.model_dump_json())))

    def finish_run(self, run_id: str, status: str, flow_run_id: str | None = None) -> None:
        """Mark a run finished with ``status``."""
        with self.session() as s, s.begin():
            row = s.get(RunRow, run_id)
            if row is not None:
                row.status, row.finished_at = status, _now()
                row.flow_run_id = flow_run_id or row.flow_run_id

    def save_cell(self, result: CellResult) -> None:
        """Insert or update the row of one cell result."""
        values = {k: v for k, v in result.flat().items() if k in _CELL_COLUMNS}
        values.update(started_at=result.started_at, finished_at=result.finished_at,
                      cell_dir=result.cell_dir, command=result.command,
                      config_json=json.loads(result.cell.model_dump_json()))
        with self.session() as s, s.begin():
            row = s.scalar(select(CellRow).where(CellRow.run_id == result.run_id,
                                                 CellRow.cell_id == result.cell.key))
            if row is None:
                s.add(CellRow(**values))
            else:
                for k, v in values.items():
                    setattr(row, k, v)

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

    def attempts(self, run_id: str, cell_id: str | None = None) -> list[dict[str, Any]]:
        """Return the attempt rows of a run (optionally one cell), oldest first."""
        q = select(AttemptRow).where(AttemptRow.run_id == run_id)
        if cell_id is not None:
            q = q.where(AttemptRow.cell_id == cell_id)
        with self.session() as s:
            return [_as_dict(r) for r in s.scalars(q.order_by(AttemptRow.id))]

    def cells(self, run_id: str) -> list[dict[str, Any]]:
        """Return the cell rows of ``run_id`` as flat dicts (report rows)."""
        with self.session() as s:
            rows = s.scalars(select(CellRow).where(CellRow.run_id == run_id).order_by(CellRow.id))
            return [_as_dict(r) for r in rows]

    def run(self, run_id: str) -> dict[str, Any] | None:
        """Return the run row of ``run_id`` as a dict, or None."""
        with self.session() as s:
            row = s.get(RunRow, run_id)
            return _as_dict(row) if row else None

    def last_run_id(self) -> str | None:
        """Return the id of the most recently created run, or None when there is none."""
        with self.session() as s:
            return s.scalar(select(RunRow.run_id).order_by(RunRow.created_at.desc()).limit(1))

    def runs(self, limit: int = 20) -> list[dict[str, Any]]:
        """Return the newest ``limit`` runs as dicts."""
        with self.session() as s:
            q = select(RunRow).order_by(RunRow.created_at.desc()).limit(limit)
            return [_as_dict(r) for r in s.scalars(q)]


def _as_dict(row: Base) -> dict[str, Any]:
    return {c.name: getattr(row, c.name) for c in row.__table__.columns}


__all__ = ["AttemptRow", "CellRow", "ResultsStore", "RunRow", "SCHEMA_VERSION"]
