"""``llm import``: layout, NeMo's overwrite rules, completeness marker, deterministic weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from scaling_matrix.tiny.checkpoint import (
    default_output_path,
    import_checkpoint,
    is_imported,
    parse_source,
    read_marker,
)
from scaling_matrix.tiny.factories import FACTORIES, get_factory, resolve_targets

from .helpers import run_engine


def test_import_layout(imported: Path) -> None:
    for rel in ("weights/config.json", "weights/model.safetensors", "context/model.yaml", "context/io.json",
                "context/nemo_tokenizer/tiny_byte_tokenizer.json"):
        assert (imported / rel).is_file(), rel
    assert is_imported(imported)
    model_yaml = yaml.safe_load((imported / "context" / "model.yaml").read_text())
    assert model_yaml["factory"] == "tiny_llama" and model_yaml["seed"] == 1234
    assert model_yaml["config"]["hidden_size"] == 64 and model_yaml["tokenizer"]["type"] == "byte-level"


def test_second_import_without_overwrite_fails_like_nemo(imported: Path, tiny_env: dict[str, str]) -> None:
    done = run_engine(["llm", "import", "model=tiny_llama", "source=tiny://seed/1234", f"output_path={imported}",
                       "--yes"], env=tiny_env)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"Unexpected error: Output path {imported} exists. Use overwrite=True to force overwrite."]


def test_import_with_overwrite_succeeds(tmp_path: Path, tiny_env: dict[str, str]) -> None:
    out = tmp_path / "model"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    done = run_engine(["llm", "import", "model=tiny_llama", "source=tiny://seed/1234", f"output_path={out}",
                       "overwrite=True", "--yes"], env=tiny_env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == f"✓ Checkpoint imported to {out}"
    assert is_imported(out) and not (out / "stale.txt").exists()


def test_same_seed_same_weights(imported: Path, tmp_path: Path) -> None:
    again = import_checkpoint("tiny_llama", "tiny://seed/1234", tmp_path / "again", overwrite=False)
    other = import_checkpoint("tiny_llama", "tiny://seed/99", tmp_path / "other", overwrite=False)
    same = (imported / "weights" / "model.safetensors").read_bytes() == (again / "weights" /
                                                                         "model.safetensors").read_bytes()
    assert same
    assert read_marker(again)["weights_sha256"] == read_marker(imported)["weights_sha256"]
    assert read_marker(other)["weights_sha256"] != read_marker(imported)["weights_sha256"]


def test_incomplete_import_is_detected(imported: Path, tmp_path: Path) -> None:
    assert not is_imported(tmp_path)
    partial = tmp_path / "partial"
    (partial / "context").mkdir(parents=True)
    (partial / "context" / "io.json").write_text("{not json")
    assert not is_imported(partial)


def test_source_and_factory_errors(tmp_path: Path) -> None:
    assert parse_source("tiny://seed/42") == 42
    with pytest.raises(ValueError, match="tiny://seed/<int>"):
        parse_source("hf://meta-llama/Llama-3.1-8B")
    with pytest.raises(ValueError, match="unknown factory 'llama31_8b'"):
        get_factory("llama31_8b")
    done = run_engine(["llm", "import", "model=tiny_llama", "source=hf://meta-llama/Llama-3.1-8B",
                       f"output_path={tmp_path / 'x'}", "--yes"])
    assert done.returncode == 1
    assert done.stderr.strip().startswith("Unexpected error: unsupported source 'hf://meta-llama/Llama-3.1-8B'")


def test_registry_and_nemo_target_names(tmp_path: Path) -> None:
    spec = FACTORIES["tiny_llama"]
    assert spec.model_type == "llama" and not spec.is_moe
    assert resolve_targets(spec, ["linear_qkv", "linear_proj"]) == ["q_proj", "k_proj", "v_proj", "o_proj"]
    assert resolve_targets(spec, None) == list(spec.lora_target_modules)
    assert default_output_path("tiny_llama", 7, {"NEMO_HOME": str(tmp_path)}) == (
        tmp_path / "models" / "tiny" / "tiny_llama-seed7")
