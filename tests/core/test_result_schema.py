"""The versioned result document: built from a seeded store (SYNTHETIC GPU-labelled cells: cluster and
library say 'seeded'), printed by `report --format json`, valid against result-schema-1.json; negative
controls show the schema rejects broken documents."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest
from typer.testing import CliRunner

from scaling_matrix.adapters.store import ResultsStore
from scaling_matrix.cli import app
from scaling_matrix.config.loading import load_matrix, load_profile
from scaling_matrix.matrix import expand
from scaling_matrix.paths import results_url
from scaling_matrix.records import CellMetrics, CellResult, RunInfo
from scaling_matrix.result_doc import SCHEMA_FILE, layout_of, result_document
from tests.history.conftest import load_script

runner = CliRunner()
SCHEMA = json.loads(SCHEMA_FILE.read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def seed_tiny_run(run_id: str = "tiny-1") -> None:
    """Store a real-shaped tiny-engine run (workload tiny, device cpu) with one failed cell."""
    store = ResultsStore(results_url())
    store.create_run(RunInfo(run_id, "smoke", load_profile("local"), "bob", None, datetime(2026, 3, 1, tzinfo=UTC)))
    for pc, status in zip(expand(load_matrix("smoke")), ("completed", "failed"), strict=True):
        m = CellMetrics(step_time_s=0.1, wall_clock_s=20.0, final_loss=3.0, peak_mem_mib=400.0,
                        tokens_per_s_per_gpu=900.0, seq_length=128, recipe="tiny_llama", library="tiny engine (CPU)")
        store.save_cell(CellResult(run_id, pc.cell, pc.model, "tiny", "cpu", "local", status=status, metrics=m))


@pytest.fixture
def seeded(scaling_home: Path) -> str:
    return load_script("screenshot_artifacts").seed_yardstick(results_url())


def test_report_json_is_the_result_document_and_validates(seeded: str) -> None:
    res = runner.invoke(app, ["report", "--run", seeded, "--format", "json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    VALIDATOR.validate(doc)
    assert doc["schema"] == "scaling-matrix/result/1" and doc["run"]["run_id"] == seeded
    by_job = {c["cell_id"]: c for c in doc["cells"]}
    lora8 = by_job["llama31_8b/data_parallel/lora/g8/tp1-pp1-ep1"]
    assert lora8["reference"]["id"] == "dgxc-v25.02-llama3-8b-lora-bf16-8"
    assert lora8["reference"]["value"] == 17809 and lora8["reference"]["ours"] == 16500.0
    assert lora8["reference"]["ratio"] == pytest.approx(16500 / 17809) and lora8["reference"]["below_threshold"]
    assert lora8["metrics"]["mfu"] == pytest.approx(16500 * 48.25e9 * 2 / 3 / 989.4e12, rel=0.01)
    a100 = by_job["llama31_8b/data_parallel/lora/g1/tp1-pp1-ep1"]
    assert a100["reference"]["verdict"].startswith("no comparable reference") and "GPU a100" in a100["reference"]["verdict"]
    assert {r["id"] for r in doc["references"]} == {"dgxc-v25.02-llama3-8b-lora-bf16-8", "dgxc-v25.02-llama3-8b-sft-bf16-8"}
    assert doc["conventions"]["flops"] == {"attention": "causal", "lora": "two_thirds",
                                           "formula": doc["conventions"]["flops"]["formula"]}


def test_conventions_and_threshold_are_selectable(seeded: str) -> None:
    res = runner.invoke(app, ["report", "--run", seeded, "--format", "json", "--lora-flops", "two_plus_r",
                              "--attention-flops", "none", "--threshold", "0.9"])
    doc = json.loads(res.output)
    VALIDATOR.validate(doc)
    lora8 = next(c for c in doc["cells"] if c["cell_id"].endswith("lora/g8/tp1-pp1-ep1"))
    assert doc["conventions"]["flops"]["lora"] == "two_plus_r" and not lora8["reference"]["below_threshold"]
    bad = runner.invoke(app, ["report", "--run", seeded, "--lora-flops", "three_quarters"])
    assert bad.exit_code == 2 and "--lora-flops" in bad.output and "Traceback" not in bad.output


def test_tiny_cells_never_get_a_reference_and_validate(scaling_home: Path) -> None:
    seed_tiny_run()
    res = runner.invoke(app, ["report", "--run", "tiny-1", "--format", "json"])
    doc = json.loads(res.output)
    VALIDATOR.validate(doc)
    assert [c["reference"]["verdict"] for c in doc["cells"]] == [
        "no comparable reference (tiny CPU engine: never compared with GPU numbers)"] * 2
    assert doc["references"] == [] and doc["cells"][0]["metrics"]["mfu"] is None


@pytest.mark.parametrize("break_it", [
    lambda d: d["cells"][0]["layout"].pop("world"),
    lambda d: d["cells"][0].update(surprise=1),
    lambda d: d["cells"][0]["reference"].update(ratio="92%"),
    lambda d: d.update(schema_version=2),
    lambda d: d["cells"][0]["metrics"].update(mfu=-0.1),
    lambda d: d["conventions"]["flops"].update(lora="three_quarters"),
])
def test_schema_rejects_broken_documents(seeded: str, break_it) -> None:
    store = ResultsStore(results_url())
    doc = result_document(store.run(seeded), store.cells(seeded))
    VALIDATOR.validate(doc)
    broken = copy.deepcopy(doc)
    break_it(broken)
    assert list(VALIDATOR.iter_errors(broken)), "negative control: the schema accepted a broken document"


def test_layout_is_built_in_one_place() -> None:
    row = {"gpus": 16, "nodes": 2, "tp": 2, "pp": 2, "cp": 1, "ep": 1, "sp": True, "dp": 4,
           "config_json": {"vp": 2, "etp": None}}
    assert layout_of(row) == {"nodes": 2, "devices_per_node": 8, "tp": 2, "pp": 2, "cp": 1, "ep": 1, "etp": None,
                              "vp": 2, "sp": True, "dp": 4, "world": 16}


def test_table_and_markdown_reports_show_the_yardstick(seeded: str) -> None:
    table = runner.invoke(app, ["report", "--run", seeded, "--layout", "wide"], env={"COLUMNS": "250"})
    assert table.exit_code == 0, table.output
    assert "Published yardstick" in table.output and "92.6%" in table.output and "below 95%" in table.output
    md = runner.invoke(app, ["report", "--run", seeded, "--format", "markdown"]).output
    assert "## Published yardstick (tokens/s per GPU)" in md
    assert "| llama31_8b/data_parallel/lora/g8/tp1-pp1-ep1 | h100-sxm | 16500 | 17809 | 92.6% | below 95% |" in md
    assert "no comparable reference (nearest dgxc-v25.02-llama3-8b-lora-bf16-8: GPU a100 vs h100-sxm)" in md
    assert "| Model TFLOPs/GPU | MFU |" in md
