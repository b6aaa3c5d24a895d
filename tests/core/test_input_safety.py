"""Unit tests beside the hostile corpus: the safe YAML reader, secret scan, escaping, ownership, paths."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from scaling_matrix.adapters.store import ResultsStore
from scaling_matrix.config.safe_yaml import MAX_NODES, load_yaml
from scaling_matrix.config.secrets import find_secrets, redact
from scaling_matrix.errors import ConfigError, StoreError
from scaling_matrix.ownership import (OWNER_FILE, check_import_target, claim_import_target, claim_output_dir,
                                      owns_import)
from scaling_matrix.paths import check_run_id, inside
from scaling_matrix.safe_text import printable

HF = "hf_" + "Zq8vLx2Rt5Wp9Ks3Nd7Hj4Fb6Mc1Ga0Ye2Uo"


def test_alias_bomb_is_rejected_fast_and_legit_aliases_load() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 9) + "]\n" for i in range(8))
    started = time.perf_counter()
    with pytest.raises(ConfigError, match=f"more than {MAX_NODES} values"):
        load_yaml(bomb, "m.yaml")
    assert time.perf_counter() - started < 2
    assert load_yaml("base: &b {x: 1}\nuse: {<<: *b, y: 2}\n", "m.yaml") == {"base": {"x": 1}, "use": {"x": 1, "y": 2}}


@pytest.mark.parametrize(("text", "problem"), [
    ("a: 1\na: 2\n", "has the key 'a' twice"),
    ("x: &x [*x]\n", "alias that contains itself"),
    ("x: " + "[" * 100 + "]" * 100, "nests deeper than"),
    ("? [a]\n: 1\n", "list or mapping as a key"),
    ("a: 'unterminated\n", "is not valid YAML at line"),
])
def test_yaml_problems_name_the_origin_and_never_the_text(text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_yaml(text, "m.yaml")
    assert str(err.value).startswith("m.yaml: ") and problem in str(err.value) and "\n" not in str(err.value)


def test_secrets_found_by_shape_and_key_name_and_redacted() -> None:
    data = {"env": {"A": HF, "MY_PASSWORD": "x", "ok": "plain"}, "cells": [{"note": "https://u:pw@h/x"}]}
    found = dict(find_secrets(data))
    assert set(found) == {"env.A", "env.MY_PASSWORD", "cells[0].note"}
    assert all(HF not in what for what in found.values())
    assert redact(f"token {HF} and sk-{'a' * 20}") == "token <redacted> and <redacted>"
    assert dict(find_secrets({HF: 1})) == {"<secret-looking text>": "key looks like a Hugging Face token (hf_...)"}


def test_printable_escapes_controls_and_bidi_but_keeps_text() -> None:
    assert printable("a\x1b[31mb\u202ec\nd [x] 'q' é") == "a\\x1b[31mb\\u202ec\\nd [x] 'q' é"


def test_run_ids_and_containment(tmp_path: Path) -> None:
    assert check_run_id("20250101-020000-ab12cd") and check_run_id("nightly.1")
    for bad in ("..", "../x", "a/b", "-rf", ".hidden", "a b", "x\n", "", "a" * 81):
        with pytest.raises(ConfigError, match="run_id: is not a valid run id"):
            check_run_id(bad)
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "link").symlink_to(tmp_path)
    assert inside(tmp_path / "base", "x") == (tmp_path / "base" / "x").resolve()
    for escape in ("../x", "/etc", "link/x"):
        with pytest.raises(ConfigError, match="leads outside"):
            inside(tmp_path / "base", escape)


def test_import_target_ownership(tmp_path: Path) -> None:
    target = tmp_path / "models" / "m"
    check_import_target(target, "f", complete=False)  # absent: fine
    claim_import_target(target)
    target.mkdir()
    (target / "partial").write_text("half an import")  # an interrupted import of ours may be redone
    assert owns_import(target)
    check_import_target(target, "f", complete=False)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("x")
    with pytest.raises(ConfigError, match="was not created by scaling-matrix"):
        check_import_target(foreign, "model_paths.m", complete=False)
    check_import_target(foreign, "model_paths.m", complete=True)  # a complete checkpoint is reused, not written
    (tmp_path / ".foreign.scaling-matrix-import").write_text('{"path": "/somewhere/else"}')
    assert not owns_import(foreign)  # a marker for another path proves nothing


def test_output_dir_claimed_once_and_foreign_ones_refused(tmp_path: Path) -> None:
    out = claim_output_dir(tmp_path / "configs", "--out")
    assert (out / OWNER_FILE).is_file()
    (out / "old.yaml").write_text("ours")
    assert claim_output_dir(out, "--out") == out  # ours: reused
    (tmp_path / "user").mkdir()
    (tmp_path / "user" / "notes.txt").write_text("theirs")
    with pytest.raises(ConfigError, match="--out: .* already holds files"):
        claim_output_dir(tmp_path / "user", "--out")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        claim_output_dir(tmp_path / "file", "--out")


def test_store_open_failure_is_a_store_error_without_the_password() -> None:
    with pytest.raises(StoreError) as err:
        ResultsStore("postgresql+psycopg2://bench:Pa55w0rd-unit@127.0.0.1:9/results")
    assert "Pa55w0rd-unit" not in str(err.value) and "***" in str(err.value)
