"""In-job restarts of a cell: count, step time thrown away, and the events (step, line, evidence).

``cells.restarts`` / ``cells.restart_time_lost_s`` are typed for SQL (history, regressions);
``cells.restart_events`` holds one object per restart (``RestartEvent`` of the log parser).
Existing rows keep NULL: they were parsed before restarts were counted ("unknown", not 0).

Revision ID: 0003_issue12_restarts
Revises: 0002_provenance
Create Date: 2026-03-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_issue12_restarts"
down_revision = "0002_provenance"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the restart columns to cells."""
    op.add_column("cells", sa.Column("restarts", sa.Integer(), nullable=True))
    op.add_column("cells", sa.Column("restart_time_lost_s", sa.Float(), nullable=True))
    op.add_column("cells", sa.Column("restart_events", sa.JSON(), nullable=True))


def downgrade() -> None:
    """Drop the restart columns."""
    with op.batch_alter_table("cells") as batch:
        batch.drop_column("restart_events")
        batch.drop_column("restart_time_lost_s")
        batch.drop_column("restarts")
