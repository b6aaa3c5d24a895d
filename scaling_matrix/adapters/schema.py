"""ORM tables of the results database (SQLAlchemy 2.0 typed declarative).

Alembic revisions under ``scaling_matrix/migrations/versions`` create exactly these tables; a
test compares them (``alembic.autogenerate.compare_metadata`` finds no difference).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from scaling_matrix.records import RunStatus


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
    status: Mapped[str] = mapped_column(String(20), default=RunStatus.RUNNING.value)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    flow_run_id: Mapped[str | None] = mapped_column(String(64))
    profile_json: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    provenance: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class CellRow(Base):
    """One cell of one run, with its final status and metrics."""

    __tablename__ = "cells"
    __table_args__ = (UniqueConstraint("run_id", "cell_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.run_id"), index=True)
    cell_id: Mapped[str] = mapped_column(String(200), index=True)
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
    provenance: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    restarts: Mapped[int | None] = mapped_column(Integer)  # in-job restarts (0003_issue12_restarts)
    restart_time_lost_s: Mapped[float | None] = mapped_column(Float)
    restart_events: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    devices_per_node: Mapped[int | None] = mapped_column(Integer)  # the layout (0004_issue14_layout)
    etp: Mapped[int | None] = mapped_column(Integer)
    vp: Mapped[int | None] = mapped_column(Integer)


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


__all__ = ["AttemptRow", "Base", "CellRow", "RunRow"]
