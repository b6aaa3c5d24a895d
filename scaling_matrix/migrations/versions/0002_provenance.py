"""Provenance JSON on runs and cells, every cell metric as JSON; indexes for history queries.

``runs.provenance``: container image/digest, NeMo version, git revision, driver/CUDA, SLURM
partition, ... (whatever the launcher knows). ``cells.provenance``: per-job facts (node list,
driver). Both are free-form JSON objects; readers treat a missing field as 'unknown'.
``cells.metrics``: the whole ``CellMetrics`` record (steady-state statistics, throughput, ...),
so new metrics are stored without a migration; the typed metric columns stay for SQL.

Revision ID: 0002_provenance
Revises: 0001_initial
Create Date: 2026-01-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_provenance"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the provenance columns and the history indexes."""
    op.add_column("runs", sa.Column("provenance", sa.JSON(), nullable=True))
    op.add_column("cells", sa.Column("provenance", sa.JSON(), nullable=True))
    op.add_column("cells", sa.Column("metrics", sa.JSON(), nullable=True))
    op.create_index("ix_cells_cell_id", "cells", ["cell_id"])
    op.create_index("ix_runs_created_at", "runs", ["created_at"])


def downgrade() -> None:
    """Drop the provenance columns and the history indexes."""
    op.drop_index("ix_runs_created_at", table_name="runs")
    op.drop_index("ix_cells_cell_id", table_name="cells")
    with op.batch_alter_table("cells") as batch:
        batch.drop_column("metrics")
        batch.drop_column("provenance")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("provenance")
