"""Alembic environment of the results schema.

Always driven programmatically (no alembic.ini): ``scaling_matrix.migrations`` passes an open
connection in ``config.attributes["connection"]``; opening ``ResultsStore(url)`` upgrades.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from scaling_matrix.adapters.schema import Base


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=Base.metadata,
                      render_as_batch=connection.dialect.name == "sqlite",
                      compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


_connection = context.config.attributes.get("connection")
if _connection is None or context.is_offline_mode():
    raise RuntimeError("run migrations through scaling_matrix.migrations.upgrade_to_head(engine)")
_run(_connection)
