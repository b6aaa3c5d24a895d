"""Megatron-Bridge workload: goldens for the workshop and coverage matrices on the megatron-bridge
profile, every rendered command checked against the pinned v0.5.0 launch surface (with negative
controls), Hydra quoting, refusals of what the release cannot run, and the sbatch wrapping."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scaling_matrix.bridge_surface import argv_problems, import_problems, load_surface, override_problem
from scaling_matrix.cells import job_request, plan_cell, plan_import
from scaling_matrix.cli import app
from scaling_matrix.config.loading import load_matrix, load_profile
from scaling_matrix.errors import ConfigError
from scaling_matrix.matrix import expand, plan_cells, unsupported_cells
from scaling_matrix.render.megatron_bridge import hydra_literal
from scaling_matrix.render.sbatch import render_sbatch
from scaling_matrix.render.shell import shell_join
from tests.conftest import REPO, golden

BRIDGE = load_profile("megatron-bridge")
SURFACE = load_surface("megatron_bridge-0.5.0")
COVERAGE = str(REPO / "tests/fixtures/matrices/contract-coverage.yaml")
runner = CliRunner()


@pytest.fixture(autouse=True)
def fixed_home(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCALING_HOME", "/scaling")


def rendered(matrix: str) -> tuple[list[str], list[str]]:
    """Return (one block per rendered cell, one line per skipped cell) of ``matrix`` on the profile."""
    mat = load_matrix(matrix)
    blocks = [f"# {pc.cell.key} ({pc.cell.job_name})\n{shell_join(plan_cell('RUN', pc, BRIDGE).argv)}\n"
              for pc in plan_cells(mat, BRIDGE, skip_unsupported=True)]
    skipped = [f"# skipped {pc.cell.key} ({pc.cell.job_name}): {why}" for pc, why in unsupported_cells(expand(mat), BRIDGE)]
    return blocks, skipped


def test_workshop_on_megatron_bridge_golden() -> None:
    """All 12 workshop cells: the 7 Llama cells render, the 5 Mixtral cells are refused with the reason
    (Megatron-Bridge 0.5.0 has no Mixtral bridge or recipe)."""
    blocks, skipped = rendered("workshop")
    assert len(blocks) == 7 and len(skipped) == 5 and all("mixtral_8x7b_peft_config" in s for s in skipped)
    imports = [f"# import {pc.model.name}\n{shell_join(plan_import(pc, BRIDGE))}\n"
               for pc in {pc.model.name: pc for pc in plan_cells(load_matrix("workshop"), BRIDGE, True)}.values()]
    golden("argv/workshop-megatron-bridge.txt", "\n".join(imports + blocks + skipped) + "\n")


def test_coverage_matrix_golden() -> None:
    blocks, skipped = rendered(COVERAGE)
    assert len(blocks) == 2 and len(skipped) == 1
    golden("argv/contract-coverage-megatron-bridge.txt", "\n".join(blocks + skipped) + "\n")


@pytest.mark.parametrize("matrix", ["workshop", COVERAGE])
def test_every_rendered_command_fits_the_pinned_surface(matrix: str) -> None:
    cells = plan_cells(load_matrix(matrix), BRIDGE, skip_unsupported=True)
    for pc in cells:
        argv = plan_cell("RUN", pc, BRIDGE).argv
        assert argv_problems(argv, SURFACE) == [], pc.cell.key
        assert import_problems(plan_import(pc, BRIDGE), SURFACE) == []
    keys = {w.split("=", 1)[0] for pc in cells for w in plan_cell("RUN", pc, BRIDGE).argv if "=" in w}
    assert matrix == "workshop" or {"model.virtual_pipeline_model_parallel_size", "model.context_parallel_size", "peft.target_modules",
            "checkpoint.load", "checkpoint.save_interval", "optimizer.lr", "validation.eval_interval"} <= keys


@pytest.mark.parametrize("bad,expect", [
    ("model.tensor_model_paralel_size=2", "GPTModelProvider has no field 'tensor_model_paralel_size'"),
    ("trainer.max_steps=5", "ConfigContainer has no section 'trainer'"),
    ("train.train_iters=ten", "not a int"),
    ("model.sequence_parallel=maybe", "not a bool"),
    ("dataset.dataset_name=alpaca", "unknown finetune preset"),
    ("checkpoint.pretrained_checkpoint", "expected key=value"),
])
def test_negative_controls_each_rejected(bad: str, expect: str) -> None:
    assert expect in (override_problem(SURFACE, bad) or "")


def test_launcher_level_negative_controls() -> None:
    pc = plan_cells(load_matrix("workshop"), BRIDGE, skip_unsupported=True)[0]
    argv = plan_cell("RUN", pc, BRIDGE).argv
    swap = lambda old, new: [new if w == old else w for w in argv]  # noqa: E731
    assert "exports no recipe" in " ".join(argv_problems(swap("llama31_8b_peft_config", "llama31_8b_lora_config"), SURFACE))
    assert "use one of" in " ".join(argv_problems(swap("llm-finetune", "squad"), SURFACE))
    assert "not an option" in " ".join(argv_problems([*argv, "--mode", "lora"], SURFACE))  # 0.6 flag, not 0.5
    sft = plan_cells(load_matrix("workshop"), BRIDGE, skip_unsupported=True)[4]
    peft_on_sft = [*plan_cell("RUN", sft, BRIDGE).argv, "peft.dim=8"]
    assert "full-SFT recipes have peft=None" in " ".join(argv_problems(peft_on_sft, SURFACE))
    assert import_problems(["python", "x/examples/conversion/convert_checkpoints.py", "import", "--hf-model", "m"],
                           SURFACE) == ["--megatron-path: required"]


def test_full_finetuning_uses_sft_recipe_with_explicit_tp() -> None:
    sft = next(pc for pc in plan_cells(load_matrix("workshop"), BRIDGE, True) if pc.cell.job_name == "l-mp-4g")
    argv = plan_cell("RUN", sft, BRIDGE).argv
    assert argv[argv.index("--recipe") + 1] == "llama31_8b_sft_config"
    assert "model.tensor_model_parallel_size=4" in argv and not any(w.startswith("peft.") for w in argv)


@pytest.mark.parametrize("value,expect", [
    ("/plain/path-1.2", "/plain/path-1.2"), (True, "true"), (None, "null"), (["a", "b"], "[a,b]"),
    ("/with space/x", "'/with space/x'"), ("/it's", "'/it\\'s'"), ("/a\\'b", "'/a\\\\\\'b'"),
    ("/x/${HOME}", "'/x/\\${HOME}'"), ("/ends\\", "'/ends\\\\'"), ("/$(id)", "'/$(id)'"),
])
def test_hydra_literal(value: object, expect: str) -> None:
    assert hydra_literal(value) == expect


def test_plan_cli_refuses_mixtral_then_skips_it() -> None:
    res = runner.invoke(app, ["plan", "--matrix", "workshop", "--profile", "megatron-bridge"])
    assert res.exit_code == 2 and "exports no recipe mixtral_8x7b_peft_config" in res.output
    assert "--skip-unsupported" in res.output and "Traceback" not in res.output
    res = runner.invoke(app, ["plan", "--matrix", "workshop", "--profile", "megatron-bridge", "--skip-unsupported",
                              "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output[res.output.index("{"):])
    assert doc["contract"] == {"workload": "megatron_bridge", "version": "0.5", "release": "0.5.0",
                               "library": doc["contract"]["library"]} and doc["nemo_contract"] is None
    assert len(doc["cells"]) == 7 and len(doc["skipped"]) == 5
    assert all(c["argv"][1] == "/opt/Megatron-Bridge/scripts/training/run_recipe.py" for c in doc["cells"])


def test_uncontracted_bridge_version_refused(tmp_path: Path) -> None:
    assert len(plan_cells(load_matrix("workshop"), BRIDGE.model_copy(update={"megatron_bridge_version": "0.5.0"}),
                          True)) == 7  # the release number maps to the contract key '0.5'
    prof = BRIDGE.model_copy(update={"megatron_bridge_version": "0.6"})
    with pytest.raises(ConfigError, match=r"megatron_bridge_version 0.6: no contract .*0.5 \(megatron-bridge 0.5.0"):
        plan_cells(load_matrix("workshop"), prof, True)


def test_sbatch_wraps_the_bridge_command_with_pyxis() -> None:
    pc = next(pc for pc in plan_cells(load_matrix("workshop"), BRIDGE, True) if pc.cell.job_name == "l-lo-8g")
    script = render_sbatch(job_request(plan_cell("RUN", pc, BRIDGE)), BRIDGE)
    golden("sbatch/megatron-bridge-pyxis-l-lo-8g.sh", script)
    assert "#SBATCH --ntasks-per-node=8" in script and "--container-image=nvcr.io#nvidia/nemo:26.06" in script
    assert subprocess.run(["bash", "-n"], input=script, text=True).returncode == 0
