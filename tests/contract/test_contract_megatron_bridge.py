"""Megatron-Bridge commands checked by the real override machinery of Megatron-Bridge 0.5.0.

Megatron-Bridge cannot be installed here (Python 3.11; see contract/requirements-megatron_bridge.txt), so
this tier runs its start-up path with the real Hydra 1.3.2 / OmegaConf 2.3.0 (the versions it pins) on a
structured config built from the pinned v0.5.0 field lists (contract/check_megatron_bridge.py): the
launcher's arguments, every ``key=value`` through ``parse_hydra_overrides`` in struct mode, and awkward
paths (spaces, quotes, ``$(…)``, ``${…}``, backslashes) must come out of Hydra byte for byte. Commands
are rendered by ``scaling-matrix plan --json`` for the preset matrices and the coverage matrix on the
megatron-bridge profile (and on one with hostile paths)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.contract.conftest import COVERAGE, REPO, contract_venv, nemo_presets, run_checker, scaling_matrix

pytestmark = [pytest.mark.contract]
SURFACE = str(REPO / "scaling_matrix" / "data" / "megatron_bridge-0.5.0.json")
AWKWARD = "/data/it's a \"model\" $(id) ${HOME} back\\slash"


def plan_commands(matrix: str, profile: str, home: Path) -> list[dict]:
    res = scaling_matrix("plan", "--matrix", matrix, "--profile", profile, "--skip-unsupported", "--json", home=home)
    assert res.returncode == 0, res.stderr[-2000:]
    doc = json.loads(res.stdout)
    assert doc["contract"]["workload"] == "megatron_bridge" and doc["cells"]
    return [{"key": f"{matrix}:{c['key']}", "argv": c["argv"]} for c in doc["cells"]]


def test_rendered_commands_pass_hydra_and_omegaconf(tmp_path: Path) -> None:
    venv = contract_venv("megatron_bridge")
    home = tmp_path / "home"
    commands = [c for m in [*nemo_presets(), str(COVERAGE["nemo2"])] for c in plan_commands(m, "megatron-bridge", home)]
    code, report = run_checker(venv, "check_megatron_bridge.py", {"surface": SURFACE, "commands": commands}, tmp_path)
    assert code == 0 and report["failures"] == [], report["failures"][:5]
    assert len(report["checked"]) == len(commands) >= 9


def test_awkward_paths_reach_the_config_verbatim(tmp_path: Path) -> None:
    venv = contract_venv("megatron_bridge")
    prof = yaml.safe_load((REPO / "scaling_matrix/presets/profiles/megatron-bridge.yaml").read_text())
    prof.update(name="awkward", models_dir=AWKWARD)
    path = tmp_path / "awkward.yaml"
    path.write_text(yaml.safe_dump(prof))
    home = tmp_path / "home with space's $(x)"
    commands = plan_commands("workshop", str(path), home)
    for c in commands:
        slug = c["key"].split(":", 1)[1]
        c["expect"] = {"checkpoint.pretrained_checkpoint": f"{AWKWARD}/llama31_8b"}
        assert any(w.startswith("checkpoint.save=") and "home with space" in w for w in c["argv"]), slug
    code, report = run_checker(venv, "check_megatron_bridge.py", {"surface": SURFACE, "commands": commands}, tmp_path)
    assert code == 0 and report["failures"] == [], report["failures"][:3]


@pytest.mark.parametrize("override,why", [
    ("model.tensor_model_paralel_size=2", "Could not override 'model.tensor_model_paralel_size'"),
    ("train.train_iters=ten", "Error merging override train.train_iters=ten"),
    ("checkpoint.pretrained_checkpoint=/data/it's", "OverrideParseException"),  # unquoted: Hydra's grammar refuses
    ("checkpoint.pretrained_checkpoint=/data/$(id)", "OverrideParseException"),
    ("peft.target_modules=linear_qkv,linear_proj", "Hydra/OmegaConf"),  # Hydra reads a sweep, not a list
])
def test_negative_controls_fail_in_the_real_parser(tmp_path: Path, override: str, why: str) -> None:
    venv = contract_venv("megatron_bridge")
    base = plan_commands("workshop", "megatron-bridge", tmp_path / "home")[0]
    bad = {"key": "bad", "argv": [*base["argv"], override]}
    code, report = run_checker(venv, "check_megatron_bridge.py", {"surface": SURFACE, "commands": [bad]}, tmp_path)
    assert code == 1 and why in report["failures"][0]["problem"], report


def test_unescaped_interpolation_would_change_the_path(tmp_path: Path) -> None:
    """Negative control for the quoting rule: '${HOME}' inside Hydra quotes is still interpolated."""
    venv = contract_venv("megatron_bridge")
    base = plan_commands("workshop", "megatron-bridge", tmp_path / "home")[0]
    raw = {"key": "raw", "argv": [*base["argv"], "checkpoint.pretrained_checkpoint='/x/${HOME}'"],
           "expect": {"checkpoint.pretrained_checkpoint": "/x/${HOME}"}}
    code, report = run_checker(venv, "check_megatron_bridge.py", {"surface": SURFACE, "commands": [raw]}, tmp_path)
    assert code == 1, report
