"""Alembic migrations on SQLite and PostgreSQL: fresh, legacy (pre-alembic), newer, reversible."""

from __future__ import annotations

import threading

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from scaling_matrix.adapters.schema import Base
from scaling_matrix.adapters.store import SCHEMA_VERSION, ResultsStore
from scaling_matrix.errors import StoreError
from scaling_matrix.migrations import (INITIAL_REVISION, alembic_config, current_revision,
                                       head_revision, known_revisions)


def _revision(url: str) -> str | None:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return current_revision(conn)
    finally:
        engine.dispose()


def test_head_is_the_schema_version_and_revisions_chain() -> None:
    assert SCHEMA_VERSION == head_revision() == "0004_issue14_layout"
    assert {INITIAL_REVISION, "0002_provenance", "0003_issue12_restarts", "0004_issue14_layout"} <= known_revisions()


def test_fresh_database_is_upgraded_to_head_and_matches_the_orm(db_url: str) -> None:
    store = ResultsStore(db_url)
    assert store.schema_version == SCHEMA_VERSION
    assert _revision(db_url) == SCHEMA_VERSION
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
        tables = set(inspect(conn).get_table_names())
    assert diff == [], f"ORM and migrations disagree: {diff}"
    assert {"runs", "cells", "attempts", "alembic_version"} <= tables


def test_pre_alembic_database_is_stamped_and_upgraded_keeping_rows(db_url: str) -> None:
    engine = create_engine(db_url)
    with engine.begin() as conn:  # what the old create_all produced: tables, no alembic_version
        command.upgrade(alembic_config(conn), INITIAL_REVISION)
        conn.execute(text("DROP TABLE alembic_version"))
        conn.execute(text("INSERT INTO runs (run_id, matrix, profile, cluster, workload, device, \"user\", "
                          "status, created_at, profile_json) VALUES ('old', 'smoke', 'local', 'local', "
                          "'tiny', 'cpu', 'alice', 'completed', '2025-01-01 00:00:00', '{}')"))
    engine.dispose()
    store = ResultsStore(db_url)
    assert _revision(db_url) == SCHEMA_VERSION
    old = store.run("old")
    assert old is not None and old["user"] == "alice" and old["provenance"] is None
    store.set_provenance("old", {"nemo_version": "25.07"})
    assert store.run("old")["provenance"] == {"nemo_version": "25.07"}


def test_database_from_a_newer_version_is_refused(db_url: str) -> None:
    ResultsStore(db_url)
    ResultsStore.release(db_url)
    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0099_from_the_future'"))
    engine.dispose()
    with pytest.raises(StoreError, match="newer than this scaling-matrix"):
        ResultsStore(db_url)


def test_migrations_downgrade_to_base_and_upgrade_again(db_url: str) -> None:
    ResultsStore(db_url)
    ResultsStore.release(db_url)
    engine = create_engine(db_url)
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), INITIAL_REVISION)
        assert "provenance" not in {c["name"] for c in inspect(conn).get_columns("runs")}
        command.downgrade(alembic_config(conn), "base")
        assert "runs" not in inspect(conn).get_table_names()
    engine.dispose()
    assert ResultsStore(db_url).schema_version == SCHEMA_VERSION
    assert _revision(db_url) == SCHEMA_VERSION


def test_concurrent_opens_in_threads_upgrade_once(db_url: str) -> None:
    errors: list[BaseException] = []

    def open_store() -> None:
        try:
            ResultsStore(db_url).runs()
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert _revision(db_url) == SCHEMA_VERSION


def _old_cell(conn, run_id: str, cell_id: str, **cfg: object) -> None:
    """Insert a cell row as revision 0003 stored it (id without nodes/cp/etp/vp, config in config_json)."""
    import json

    config = {"model": "llama31_8b", "track": "data_parallel", "peft": "lora", "gpus": 8, "nodes": 1, "tp": 1,
              "pp": 1, "cp": 1, "ep": 1, "sp": False, "etp": None, "vp": None, "repeat": 1, **cfg}
    conn.execute(text(
        "INSERT INTO cells (run_id, cell_id, model, track, gpus, nodes, tp, pp, cp, ep, sp, dp, peft, "
        "global_batch_size, micro_batch_size, status, reason, attempts, workload, device, cluster, config_json, "
        "steps_logged, reached_last_step) VALUES (:r, :c, 'llama31_8b', 'data_parallel', :g, :n, 1, 1, :cp, 1, "
        ":sp, 8, 'lora', 8, 1, 'completed', '', 1, 'nemo', 'gpu', 'ibex', :cfg, 10, :t)"),
        {"r": run_id, "c": cell_id, "g": config["gpus"], "n": config["nodes"], "cp": config["cp"],
         "sp": bool(config["sp"]), "cfg": json.dumps(config), "t": True})


def test_layout_revision_keeps_history_and_names_the_ambiguous_cells(db_url: str) -> None:
    """0004: plain cells keep their ids (their series continue); a 2-node or CP cell that shared the
    plain id gets its own; the ledger follows; every row gets its GPUs per node."""
    from scaling_matrix.history import series_key

    engine = create_engine(db_url)
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "0003_issue12_restarts")
        conn.execute(text("INSERT INTO runs (run_id, matrix, profile, cluster, workload, device, \"user\", "
                          "status, created_at, profile_json) VALUES ('old', 'w', 'ibex', 'ibex', 'nemo', 'gpu', "
                          "'al', 'completed', '2025-01-01 00:00:00', '{}')"))
        plain = "llama31_8b/data_parallel/lora/g8/tp1-pp1-ep1"
        _old_cell(conn, "old", plain)
        _old_cell(conn, "old", plain + "/r2", nodes=2, repeat=2)  # a 2x4 cell that old ids could not name
        _old_cell(conn, "old", "llama31_8b/data_parallel/lora/g4/tp1-pp1-ep1", gpus=4, cp=2, sp=False)
        conn.execute(text("INSERT INTO attempts (run_id, cell_id, attempt, status, reason, started_at) VALUES "
                          "('old', :c, 1, 'completed', '', '2025-01-01 00:00:00')"), {"c": plain + "/r2"})
    engine.dispose()
    store = ResultsStore(db_url)
    cells = {c["cell_id"]: c for c in store.cells("old")}
    assert sorted(cells) == sorted([plain, "llama31_8b/data_parallel/lora/g8-n2/tp1-pp1-ep1/r2",
                                    "llama31_8b/data_parallel/lora/g4/tp1-pp1-ep1-cp2"])
    assert cells[plain]["devices_per_node"] == 8
    assert cells["llama31_8b/data_parallel/lora/g8-n2/tp1-pp1-ep1/r2"]["devices_per_node"] == 4
    assert [a["cell_id"] for a in store.attempts("old")] == ["llama31_8b/data_parallel/lora/g8-n2/tp1-pp1-ep1/r2"]
    keys = {series_key(c) for c in store.history()}
    assert len(keys) == 3  # three series, where the old ids had one for the first two
