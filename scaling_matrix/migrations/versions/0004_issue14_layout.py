"""A cell's whole layout in the store: GPUs per node, expert TP and virtual pipeline columns, and
cell ids that name nodes, CP, ETP and VP.

Before this revision a cell id (``.../g8/tp1-pp1-ep1``) dropped nodes, cp, etp and vp, so 1 x 8,
2 x 4 and 1 x 8 with cp=2 shared one id and one history series. Existing rows keep their history:

- ``devices_per_node`` = gpus / nodes for every row; ``etp`` / ``vp`` from the row's stored
  configuration (``config_json``), NULL where it had none.
- Ids of single-node cells without CP/ETP/VP (every cell the old expansion could tell apart) are
  unchanged; the few others get the id the new code gives them, in ``cells`` and in the job ledger
  (``attempts``), so their series continue under the right name.

Revision ID: 0004_issue14_layout
Revises: 0003_issue12_restarts
Create Date: 2026-03-08
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0004_issue14_layout"
down_revision = "0003_issue12_restarts"
branch_labels = None
depends_on = None


def _layout_id(old_id: str, cfg: dict[str, Any]) -> str:
    """Return the cell id of ``cfg`` (a stored CellSpec) as this revision names it (frozen copy of
    ``Layout.slug``: a migration must not change when the code does)."""
    nodes, gpus = int(cfg.get("nodes") or 1), int(cfg.get("gpus") or 0)
    cp, etp, vp = int(cfg.get("cp") or 1), cfg.get("etp"), cfg.get("vp")
    if nodes == 1 and cp == 1 and etp is None and vp is None:
        return old_id
    size = f"g{gpus}" + (f"-n{nodes}" if nodes > 1 else "")
    split = f"tp{cfg.get('tp') or 1}-pp{cfg.get('pp') or 1}-ep{cfg.get('ep') or 1}"
    split += (f"-cp{cp}" if cp > 1 else "") + (f"-etp{etp}" if etp is not None else "")
    split += (f"-vp{vp}" if vp is not None else "") + ("-sp" if cfg.get("sp") else "")
    rep = int(cfg.get("repeat") or 1)
    return (f"{cfg['model']}/{cfg['track']}/{cfg.get('peft') or 'lora'}/{size}/{split}"
            + (f"/r{rep}" if rep > 1 else ""))


def _config(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    try:
        loaded = json.loads(value) if value else {}
    except (TypeError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def upgrade() -> None:
    """Add the layout columns, fill them from every row's configuration, rename ambiguous ids."""
    op.add_column("cells", sa.Column("devices_per_node", sa.Integer(), nullable=True))
    op.add_column("cells", sa.Column("etp", sa.Integer(), nullable=True))
    op.add_column("cells", sa.Column("vp", sa.Integer(), nullable=True))
    conn = op.get_bind()
    cells = sa.table("cells", sa.column("id", sa.Integer), sa.column("run_id", sa.String),
                     sa.column("cell_id", sa.String), sa.column("gpus", sa.Integer), sa.column("nodes", sa.Integer),
                     sa.column("config_json", sa.JSON), sa.column("devices_per_node", sa.Integer),
                     sa.column("etp", sa.Integer), sa.column("vp", sa.Integer))
    attempts = sa.table("attempts", sa.column("run_id", sa.String), sa.column("cell_id", sa.String))
    rows = conn.execute(sa.select(cells.c.id, cells.c.run_id, cells.c.cell_id, cells.c.gpus, cells.c.nodes,
                                  cells.c.config_json)).all()
    for row_id, run_id, cell_id, gpus, nodes, raw in rows:
        cfg = _config(raw)
        new_id = _layout_id(cell_id, cfg) if cfg.get("model") and cfg.get("track") else cell_id
        conn.execute(cells.update().where(cells.c.id == row_id).values(
            devices_per_node=int(gpus) // max(int(nodes or 1), 1), etp=cfg.get("etp"), vp=cfg.get("vp"),
            cell_id=new_id))
        if new_id != cell_id:
            conn.execute(attempts.update().where(attempts.c.run_id == run_id, attempts.c.cell_id == cell_id)
                         .values(cell_id=new_id))


def downgrade() -> None:
    """Drop the layout columns (renamed ids keep their new, longer names)."""
    with op.batch_alter_table("cells") as batch:
        batch.drop_column("vp")
        batch.drop_column("etp")
        batch.drop_column("devices_per_node")
