"""The scaling-matrix CLI: plan, bad input, report errors (no Prefect server needed)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from typer.testing import CliRunner

from scaling_matrix.adapters.store import ResultsStore
from scaling_matrix.cli import app
from scaling_matrix.config.loading import load_matrix, load_profile
from scaling_matrix.matrix import expand
from scaling_matrix.paths import results_url
from scaling_matrix.records import CellMetrics, CellResult, RunInfo

runner = CliRunner()


def test_plan_workshop_prints_all_commands() -> None:
    res = runner.invoke(app, ["plan", "--matrix", "workshop"])
    assert res.exit_code == 0, res.output
    assert "12 cells valid on profile ibex" in res.output
    assert res.output.count("nemo llm finetune --factory") == 12
    assert res.output.count("nemo llm import") == 2


def test_run_rejects_bad_input_before_anything_runs(scaling_home: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(load_matrix_text().replace("gpus: [1, 2]", "gpus: [0, 2]"))
    res = runner.invoke(app, ["run", "--matrix", str(bad), "--profile", "local"])
    assert res.exit_code == 2
    assert "axes[0].gpus: must be at least 1 (fix: set gpus to 1 or more)" in res.output
    assert not scaling_home.exists()  # nothing was created, nothing submitted
    res = runner.invoke(app, ["run", "--matrix", "workshop", "--profile", "local"])
    assert res.exit_code == 2 and "workload" in res.output


def load_matrix_text() -> str:
    from importlib import resources
    return (resources.files("scaling_matrix") / "presets" / "matrices" / "smoke.yaml").read_text()


def test_report_formats(scaling_home: Path) -> None:
    store = ResultsStore(results_url())
    store.create_run(RunInfo("r9", "smoke", load_profile("local"), "bob", None, datetime.now(UTC)))
    for pc, wall in zip(expand(load_matrix("smoke")), (20.0, 12.0), strict=True):
        store.save_cell(CellResult("r9", pc.cell, pc.model, "tiny", "cpu", "local", status="completed",
                                   metrics=CellMetrics(step_time_s=0.1, wall_clock_s=wall, final_loss=3.0,
                                                       first_loss=5.0, peak_mem_mib=400.0)))
    res = runner.invoke(app, ["report", "--last", "--format", "json"])
    rows = json.loads(res.output)["cells"]  # the versioned result document (docs/result-schema.md)
    assert [r["layout"]["world"] for r in rows] == [1, 2] and rows[1]["scaling"]["time_scaling"] == 20.0 / 12.0
    assert {r["workload"] for r in rows} == {"tiny"} and {r["device"] for r in rows} == {"cpu"}
    res = runner.invoke(app, ["report", "--run", "r9", "--format", "markdown"])
    md = res.output
    assert res.exit_code == 0, (res.output, res.exception)
    assert "| GPUs | Batch per GPU | Total job time (HH:MM:SS) |" in md
    assert runner.invoke(app, ["report", "--run", "nope"]).exit_code == 1
    assert runner.invoke(app, ["report"]).exit_code == 2


def test_bad_variant_or_repeats_override_is_rejected_naming_the_field(scaling_home: Path) -> None:
    res = runner.invoke(app, ["plan", "--matrix", "smoke", "--variant", "bogus"])
    assert res.exit_code == 2 and "variant" in res.output and "'faithful' or 'corrected'" in res.output
    res = runner.invoke(app, ["run", "--matrix", "smoke", "--repeats", "0", "--dry-run"])
    assert res.exit_code == 2 and "--repeats: must be a whole number from 1 to 10 (fix: use --repeats 1)" in res.output
    assert "{'repeats'" not in res.output and "got 0" not in res.output
    assert load_matrix("smoke", variant="corrected", repeats=2).repeats == 2  # valid overrides apply


def test_plan_out_writes_every_job_and_refuses_a_foreign_folder(tmp_path: Path) -> None:
    out = tmp_path / "jobs"
    res = runner.invoke(app, ["plan", "--matrix", "workshop", "--profile", "ibex", "--out", str(out)])
    assert res.exit_code == 0, res.output
    index = json.loads((out / "rendered.json").read_text())
    assert len(index["cells"]) == 12 and sorted(index["imports"]) == ["llama31_8b", "mixtral_8x7b"]
    for key, job in index["cells"].items():
        folder = Path(job["folder"])
        script = (folder / "job.sbatch").read_text()
        assert script.startswith("#!/bin/bash\n#SBATCH --job-name=") and "singularity exec --nv" in script
        assert json.loads((folder / "argv.json").read_text())[:3] == ["nemo", "llm", "finetune"]
        assert job["command"] in res.output
        # the AutoModel recipe beside it, or why the contracted release refuses it (Mixtral EP in 0.7)
        assert (folder / "automodel.yaml").is_file() != ("recipe_refused" in job), job
        if "recipe_refused" in job:
            assert "mixtral" in key and "ep" in job["recipe_refused"] and "automodel" in job["recipe_refused"]
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    res = runner.invoke(app, ["plan", "--matrix", "workshop", "--out", str(foreign)])
    assert res.exit_code == 2 and "--out" in res.output and (foreign / "notes.txt").read_text() == "keep me"
    assert not (foreign / "rendered.json").exists()
