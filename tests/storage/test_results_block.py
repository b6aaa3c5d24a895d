"""``ResultsDatabase`` block and the results-URL resolution order."""

from __future__ import annotations

import pytest
from prefect.blocks.core import Block
from prefect.testing.standard_test_suites import BlockStandardTestSuite

from blocks.results_db import DB_BLOCK_ENV, DB_URL_ENV, ResultsDatabase, redacted, resolve_results_url
from scaling_matrix.errors import ConfigError

PG = ResultsDatabase(driver="postgresql+psycopg2", host="db.example.org", port=5432, database="scaling",
                     username="bench", password="s3cr3t-pw")


class TestResultsDatabaseStandard(BlockStandardTestSuite):
    """Prefect's standard block checks (descriptions, code example), minus the logo download."""

    @pytest.fixture
    def block(self) -> type[Block]:
        return ResultsDatabase

    def test_has_a_valid_image(self, block: type[Block]) -> None:
        assert block._logo_url is None  # no logo; the standard check would download one (CI is offline)


def test_url_has_the_password_only_when_asked() -> None:
    assert PG.url() == "postgresql+psycopg2://bench:s3cr3t-pw@db.example.org:5432/scaling"
    assert "s3cr3t-pw" not in str(PG.sqlalchemy_url())
    assert "s3cr3t-pw" not in repr(PG) and "s3cr3t-pw" not in str(PG)
    assert redacted(PG.url()) == "postgresql+psycopg2://bench:***@db.example.org:5432/scaling"
    assert ResultsDatabase().url() == "sqlite:///.scaling/results.db"


def test_resolution_order_env_url_then_block_then_sqlite(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    loaded: list[str] = []

    def fake_load(cls: type[ResultsDatabase], name: str, **_: object) -> ResultsDatabase:
        loaded.append(name)
        if name != "shared":
            raise ValueError(f"Unable to find block document named {name}")
        return PG

    monkeypatch.setattr(ResultsDatabase, "load", classmethod(fake_load))
    env = {"SCALING_HOME": str(tmp_path)}
    assert resolve_results_url({**env, DB_URL_ENV: "sqlite:///x.db", DB_BLOCK_ENV: "shared"}) == "sqlite:///x.db"
    assert loaded == []
    assert resolve_results_url({**env, DB_BLOCK_ENV: "shared"}) == PG.url()
    monkeypatch.setenv("SCALING_HOME", str(tmp_path))
    assert resolve_results_url({}) == f"sqlite:///{tmp_path / 'results.db'}"
    with pytest.raises(ConfigError, match="cannot load ResultsDatabase block 'nope'"):
        resolve_results_url({DB_BLOCK_ENV: "nope"})
