"""Contract: every recipe `scaling-matrix automodel` renders for every preset matrix is accepted by
nemo-automodel 0.7.0 (contract/check_automodel.py); cells it cannot run are refused before rendering,
naming the release and the field; negative controls; and the real `automodel` CLI, given a rendered
workshop recipe, gets past configuration parsing and stops only at its missing-CUDA check."""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import COVERAGE, contract_venv, nemo_presets, nemo_profiles, run_checker, scaling_matrix

pytestmark = [pytest.mark.contract, pytest.mark.slow]


def render_all(work: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Return (rendered cells, skipped-cell errors) of `scaling-matrix automodel --json` for every preset."""
    cells: list[dict[str, Any]] = []
    skipped: list[str] = []
    for matrix in [*nemo_presets(), str(COVERAGE["automodel"])]:
        out = work / "recipes" / Path(matrix).stem
        proc = scaling_matrix("automodel", "--matrix", matrix, "--profile", nemo_profiles()[0], "--out", str(out),
                              "--skip-unsupported", "--json", home=work / "home")
        assert proc.returncode == 0, proc.stderr
        doc = json.loads(proc.stdout)
        assert doc["automodel"] == "0.7.0"
        cells += doc["cells"]
        skipped += [s["error"] for s in doc["skipped"]]
    return cells, skipped


def mutated(cell: dict[str, Any], name: str, work: Path, change: Any) -> dict[str, Any]:
    """Return a copy of ``cell`` whose recipe has ``change`` applied (a negative control)."""
    raw = copy.deepcopy(yaml.safe_load(Path(cell["config"]).read_text()))
    change(raw)
    path = work / f"neg-{name}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return {**cell, "key": f"neg/{name}", "config": str(path), "argv": ["automodel", str(path), *cell["argv"][2:]]}


@pytest.fixture(scope="module")
def checked(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    venv = contract_venv("automodel")
    work = tmp_path_factory.mktemp("automodel")
    cells, skipped = render_all(work)
    lora = next(c for c in cells if "lora" in c["key"] and c["model"] == "llama31_8b")
    mixtral = next(c for c in cells if c["model"] == "mixtral_8x7b")
    negatives = [
        mutated(lora, "misspelled-key", work, lambda r: r["step_scheduler"].update(global_batch_sise=8)),
        mutated(lora, "malformed-list", work, lambda r: r["peft"].update(target_modules="q_proj,o_proj")),
        mutated(lora, "no-recipe", work, lambda r: r.pop("recipe")),
        mutated(lora, "rng-section", work, lambda r: r.update(rng={"seed": 1})),
        mutated(mixtral, "mixtral-ep", work, lambda r: r["distributed"].update(ep_size=2)),
    ]
    rc, report = run_checker(venv, "check_automodel.py", {"cells": cells + negatives}, work)
    return {"rc": rc, "report": report, "cells": cells, "skipped": skipped, "venv": venv, "work": work}


def failures(checked: dict[str, Any]) -> dict[str, list[str]]:
    return {f["id"]: f["errors"] for f in checked["report"]["failures"]}


def test_every_rendered_recipe_is_accepted_by_automodel(checked: dict[str, Any]) -> None:
    assert {k: v for k, v in failures(checked).items() if not k.startswith("neg/")} == {}
    assert checked["report"]["checked"] == len(checked["cells"]) + 5
    assert len(checked["cells"]) == 7 + 4  # workshop: the 7 Llama cells; coverage matrix: 4


def test_unsupported_cells_refused_before_rendering(checked: dict[str, Any]) -> None:
    assert len(checked["skipped"]) == 5  # the workshop's Mixtral cells: all use EP
    assert all("nemo-automodel 0.7.0" in e and ".ep:" in e for e in checked["skipped"])
    # ...and the refusal is AutoModel's own verdict: its registry has no Mixtral implementation with EP
    assert any("MixtralForCausalLM has no AutoModel implementation" in e for e in failures(checked)["neg/mixtral-ep"])


def test_negative_controls_fail_the_checker(checked: dict[str, Any]) -> None:
    got = failures(checked)
    assert checked["rc"] == 1
    assert any("global_batch_sise" in e for e in got["neg/misspelled-key"])
    assert any("peft.target_modules" in e and "list" in e for e in got["neg/malformed-list"])
    assert any("must specify a recipe target" in e for e in got["neg/no-recipe"])
    assert any(e.startswith("rng:") and "never read" in e for e in got["neg/rng-section"])


def run_automodel_cli(venv: Path, config: str, nproc: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(venv / "bin" / "automodel"), config, "--nproc-per-node", str(nproc)],
                          capture_output=True, text=True, timeout=300, cwd=Path(config).parent,
                          env={"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "HOME": str(Path(config).parent)})


def test_automodel_cli_stops_only_at_missing_cuda(checked: dict[str, Any]) -> None:
    """Acceptance: past config parsing (recipe resolved, YAML loaded), the first failure is CUDA."""
    cell = next(c for c in checked["cells"] if c["key"] == "llama31_8b/data_parallel/lora/g2/tp1-pp1-ep1")
    proc = run_automodel_cli(checked["venv"], cell["config"], cell["nproc_per_node"])
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out[-3000:]
    tail = out[out.rindex("Traceback (most recent call last)"):]
    assert "in launch\n    num_devices = determine_local_world_size(nproc_per_node=\"gpu\")" in tail
    assert "return InteractiveLauncher().launch(cfg, config_path, recipe_target" in tail  # after the loader
    assert tail.rstrip().endswith("ValueError: Cuda is not available."), tail[-2000:]
    assert "must specify a recipe target" not in out


def test_automodel_cli_without_recipe_key_stops_at_parsing(checked: dict[str, Any]) -> None:
    """Negative control for the acceptance check: the pre-contract recipes (no `recipe:`) never got there."""
    proc = run_automodel_cli(checked["venv"], str(checked["work"] / "neg-no-recipe.yaml"), 2)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1 and "YAML config must specify a recipe target" in out
    assert "Cuda is not available" not in out
