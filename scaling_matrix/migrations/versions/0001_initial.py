"""Initial schema: runs (with user and cluster), cells, attempts — as shipped before alembic.

Revision ID: 0001_initial
Revises:
Create Date: 2026-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None

_TZ = sa.DateTime(timezone=True)


def _runs() -> None:
    op.create_table(
        "runs",
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("matrix", sa.String(200), nullable=False),
        sa.Column("profile", sa.String(100), nullable=False),
        sa.Column("cluster", sa.String(100), nullable=False),
        sa.Column("workload", sa.String(20), nullable=False),
        sa.Column("device", sa.String(20), nullable=False),
        sa.Column("user", sa.String(100), nullable=False),
        sa.Column("git_rev", sa.String(64), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_at", _TZ, nullable=False),
        sa.Column("finished_at", _TZ, nullable=True),
        sa.Column("flow_run_id", sa.String(64), nullable=True),
        sa.Column("profile_json", sa.JSON(), nullable=False),
    )


def _cells() -> None:
    ints = ["gpus", "nodes", "tp", "pp", "cp", "ep"]
    floats = ["first_loss", "final_loss", "last_val_loss", "step_time_s", "median_step_time_s",
              "mean_step_time_s", "wall_clock_s", "peak_mem_mib", "avg_mem_mib", "mode_mem_mib",
              "all_peak_mem_mib"]
    op.create_table(
        "cells",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.run_id"), nullable=False),
        sa.Column("cell_id", sa.String(200), nullable=False),
        sa.Column("model", sa.String(100), nullable=False),
        sa.Column("track", sa.String(30), nullable=False),
        *[sa.Column(name, sa.Integer(), nullable=False) for name in ints],
        sa.Column("sp", sa.Boolean(), nullable=False),
        sa.Column("dp", sa.Integer(), nullable=False),
        sa.Column("peft", sa.String(10), nullable=False),
        sa.Column("global_batch_size", sa.Integer(), nullable=False),
        sa.Column("micro_batch_size", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("failure_class", sa.String(30), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("job_id", sa.String(64), nullable=True),
        sa.Column("workload", sa.String(20), nullable=False),
        sa.Column("device", sa.String(20), nullable=False),
        sa.Column("cluster", sa.String(100), nullable=False),
        sa.Column("started_at", _TZ, nullable=True),
        sa.Column("finished_at", _TZ, nullable=True),
        sa.Column("cell_dir", sa.Text(), nullable=True),
        sa.Column("command", sa.Text(), nullable=True),
        sa.Column("config_json", sa.JSON(), nullable=False),
        sa.Column("steps_logged", sa.Integer(), nullable=False),
        sa.Column("last_step", sa.Integer(), nullable=True),
        sa.Column("max_steps", sa.Integer(), nullable=True),
        sa.Column("reached_last_step", sa.Boolean(), nullable=False),
        *[sa.Column(name, sa.Float(), nullable=True) for name in floats],
        sa.UniqueConstraint("run_id", "cell_id"),
    )
    op.create_index("ix_cells_run_id", "cells", ["run_id"])


def _attempts() -> None:
    op.create_table(
        "attempts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.run_id"), nullable=False),
        sa.Column("cell_id", sa.String(200), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.String(64), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("failure_class", sa.String(30), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("started_at", _TZ, nullable=False),
        sa.Column("finished_at", _TZ, nullable=True),
        sa.UniqueConstraint("run_id", "cell_id", "attempt"),
    )
    op.create_index("ix_attempts_run_id", "attempts", ["run_id"])


def upgrade() -> None:
    """Create runs, cells and attempts."""
    _runs()
    _cells()
    _attempts()


def downgrade() -> None:
    """Drop every table."""
    op.drop_table("attempts")
    op.drop_table("cells")
    op.drop_table("runs")
