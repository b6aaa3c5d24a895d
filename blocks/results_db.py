"""``ResultsDatabase`` block: where results are stored (SQLite default, PostgreSQL for sharing).

``resolve_results_url()`` is the one place that decides which database a process uses:
``$SCALING_DB_URL``, else the saved block named by ``$SCALING_DB_BLOCK``, else SQLite at
``$SCALING_HOME/results.db``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Literal, cast

from prefect.blocks.core import Block
from pydantic import Field, HttpUrl, SecretStr
from sqlalchemy.engine import URL, make_url

from scaling_matrix.errors import ConfigError
from scaling_matrix.paths import results_url

DB_URL_ENV = "SCALING_DB_URL"
DB_BLOCK_ENV = "SCALING_DB_BLOCK"


class ResultsDatabase(Block):
    """Connection parts of the results database; the password is a secret and never logged.

    Example:
        Point every flow of a deployment at a shared PostgreSQL:
        ```python
        from blocks.results_db import ResultsDatabase

        ResultsDatabase(driver="postgresql+psycopg2", host="db.example.org", port=5432,
                        database="scaling", username="bench", password="...").save("shared")
        results_db = ResultsDatabase.load("BLOCK_NAME")
        ```
        then run with ``SCALING_DB_BLOCK=shared``.
    """

    _block_type_slug = "results-database"
    _block_type_name = "Results Database"
    _description = "Results database of scaling-matrix (SQLite file or PostgreSQL)."
    _documentation_url = HttpUrl("https://docs.sqlalchemy.org/en/20/core/engines.html#database-urls")

    driver: Literal["sqlite", "postgresql+psycopg2"] = Field(
        "sqlite", description="SQLAlchemy driver name.")
    database: str = Field(".scaling/results.db", description="SQLite path or PostgreSQL database name.")
    host: str | None = Field(None, description="PostgreSQL host.")
    port: int | None = Field(None, description="PostgreSQL port.")
    username: str | None = Field(None, description="PostgreSQL user.")
    password: SecretStr | None = Field(None, description="PostgreSQL password (stored encrypted).")

    def url(self) -> str:
        """Return the SQLAlchemy URL, password included (do not log it)."""
        return self.sqlalchemy_url().render_as_string(hide_password=False)

    def sqlalchemy_url(self) -> URL:
        """Return the URL object (its ``str()`` hides the password)."""
        pw = self.password.get_secret_value() if self.password else None
        return URL.create(self.driver, username=self.username, password=pw, host=self.host,
                          port=self.port, database=self.database)


def resolve_results_url(env: Mapping[str, str] | None = None) -> str:
    """Return the results DB URL: ``$SCALING_DB_URL``, the ``$SCALING_DB_BLOCK`` block, or SQLite.

    Raises:
        ConfigError: ``$SCALING_DB_BLOCK`` names a block that cannot be loaded.
    """
    env = os.environ if env is None else env
    if env.get(DB_URL_ENV):
        return env[DB_URL_ENV]
    name = env.get(DB_BLOCK_ENV)
    if name:
        try:
            block = cast("ResultsDatabase", ResultsDatabase.load(name))  # sync context: the block itself
            return block.url()
        except (ValueError, RuntimeError) as exc:
            raise ConfigError(DB_BLOCK_ENV, f"cannot load ResultsDatabase block {name!r}: {exc}",
                              "save it with ResultsDatabase(...).save(name) or unset the variable") from exc
    return results_url()


def redacted(url: str) -> str:
    """Return ``url`` with its password masked, for logs and artifacts."""
    return make_url(url).render_as_string(hide_password=True)


__all__ = ["DB_BLOCK_ENV", "DB_URL_ENV", "ResultsDatabase", "redacted", "resolve_results_url"]
