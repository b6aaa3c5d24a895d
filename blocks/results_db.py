"""``ResultsDatabase`` block: where results are stored (SQLite default, PostgreSQL for sharing)."""

from __future__ import annotations

from typing import Literal

from prefect.blocks.core import Block
from pydantic import Field, SecretStr
from sqlalchemy.engine import URL


class ResultsDatabase(Block):
    """Connection parts of the results database; the password is a secret and never logged."""

    _block_type_slug = "results-database"
    _description = "Results database of scaling-matrix (SQLite file or PostgreSQL)."

    driver: Literal["sqlite", "postgresql+psycopg2"] = Field("sqlite", description="SQLAlchemy driver")
    database: str = Field(".scaling/results.db", description="SQLite path or PostgreSQL database name")
    host: str | None = Field(None, description="PostgreSQL host")
    port: int | None = Field(None, description="PostgreSQL port")
    username: str | None = None
    password: SecretStr | None = Field(None, description="PostgreSQL password (stored encrypted)")

    def url(self) -> str:
        """Return the SQLAlchemy URL, password included (do not log it)."""
        return self.sqlalchemy_url().render_as_string(hide_password=False)

    def sqlalchemy_url(self) -> URL:
        """Return the URL object (its ``str()`` hides the password)."""
        pw = self.password.get_secret_value() if self.password else None
        return URL.create(self.driver, username=self.username, password=pw, host=self.host,
                          port=self.port, database=self.database)
