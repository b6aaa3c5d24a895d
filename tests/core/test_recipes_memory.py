"""Recipes, pre-submit validation corpus, faithful/corrected switch, memory prediction verdicts."""

from __future__ import annotations

import pytest

from scaling_matrix.config.loading import load_matrix, load_profile
from scaling_matrix.errors import ConfigError
from scaling_matrix.feasibility import assess, calibrations_from_rows
from scaling_matrix.matrix import PlannedCell, check_against_profile, check_cell, plan_cells
from scaling_matrix.memory_model import calibration_factor
from scaling_matrix.recipes import RECIPES
from scaling_matrix.render.nemo import finetune_argv

IBEX = load_profile("ibex")
WORKSHOP = plan_cells(load_matrix("workshop"), IBEX)
LLAMA = next(pc for pc in WORKSHOP if pc.cell.job_name == "l-lo-1g")
MIXTRAL = next(pc for pc in WORKSHOP if pc.cell.job_name == "m-lo-2g")


def _with(pc: PlannedCell, **update: object) -> PlannedCell:
    return PlannedCell(pc.cell.model_copy(update=update), pc.model)


@pytest.mark.parametrize(("name", "billions"), [("llama31_8b", 8.03), ("llama31_70b", 70.55), ("mixtral_8x7b", 46.70)])
def test_parameter_counts_match_published(name: str, billions: float) -> None:
    dense, expert = RECIPES[name].params()
    assert (dense + expert) / 1e9 == pytest.approx(billions, abs=0.01)


INVALID = [
    (dict(gpus=2, tp=4), LLAMA, "TP·PP·CP"),
    (dict(gpus=4, ep=8), MIXTRAL, "ETP·EP·PP"),
    (dict(gpus=6, ep=3), MIXTRAL, "must divide the expert count"),
    (dict(gpus=2, sp=True), LLAMA, "requires TP > 1"),
    (dict(gpus=4, tp=2, ep=2, sp=False), MIXTRAL, "requires sequence parallel"),
    (dict(gpus=2, ep=2), LLAMA, "needs a MoE model"),
    (dict(gpus=4, global_batch_size=6), LLAMA, "global batch 6 must be divisible"),
    (dict(vp=2), LLAMA, "requires PP > 1"),
]


@pytest.mark.parametrize(("update", "base", "rule"), INVALID, ids=[r for _, _, r in INVALID])
def test_invalid_cells_name_the_rule(update: dict, base: PlannedCell, rule: str) -> None:
    assert any(rule in p for p in check_cell(_with(base, **update)))


def test_profile_limits_name_the_rule() -> None:
    assert any("gpus_per_node" in p for p in check_against_profile(_with(LLAMA, gpus=16), IBEX))
    assert any("gpus_per_node" not in p and "capacity" in p
               for p in check_against_profile(_with(LLAMA, gpus=16, nodes=2),
                                              IBEX.model_copy(update={"capacity_gpus": 8})))
    local = load_profile("local")  # locally, a cell above capacity runs alone instead
    assert check_against_profile(_with(LLAMA, gpus=4), local.model_copy(update={"workload": "nemo",
                                                                                 "device": "cpu"})) == []


def test_invalid_cell_rejected_before_submission(tmp_path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: bad\nmodels:\n  m: {factory: mixtral_8x7b, family: moe, experts: 8, source: hf://mistralai/Mixtral-8x7B-v0.1, workload: nemo}\n"
                    "cells:\n  - {model: m, track: model_parallel, gpus: 4, tp: 2, ep: 2}\n")
    with pytest.raises(ConfigError) as err:
        plan_cells(load_matrix(str(path)), IBEX)
    assert "matrix bad: cells[0].sp: EP > 1 with TP > 1 requires sequence parallel (fix: set sp: true)" == str(err.value)


def test_faithful_vs_corrected_mixtral_model_parallel() -> None:
    faithful = [pc for pc in WORKSHOP if pc.cell.track == "model_parallel" and pc.model.family == "moe"]
    mat = load_matrix("workshop").model_copy(update={"variant": "corrected"})
    corrected = [pc for pc in plan_cells(mat, IBEX) if pc.cell.track == "model_parallel" and pc.model.family == "moe"]
    assert [pc.cell.peft for pc in faithful] == ["lora", "lora"]
    assert [pc.cell.peft for pc in corrected] == ["none", "none"]
    assert [pc.cell.job_name for pc in corrected] == ["m-mp-4g", "m-mp-8g"]
    assert "peft=none" not in finetune_argv(faithful[0].cell, faithful[0].model, "/m", ["nemo"])
    assert "peft=none" in finetune_argv(corrected[0].cell, corrected[0].model, "/m", ["nemo"])


def test_peft_none_override_vs_factory_argument() -> None:
    over = finetune_argv(_with(LLAMA, peft="none").cell, LLAMA.model, "/m", ["nemo"])
    fac = finetune_argv(_with(LLAMA, peft="none", peft_via="factory").cell, LLAMA.model, "/m", ["nemo"])
    assert over[4] == "llama31_8b" and "peft=none" in over
    assert fac[4] == "llama31_8b(peft_scheme='none')" and "peft=none" not in fac
    lora = finetune_argv(_with(LLAMA, lora_dim=16, lora_alpha=32, lora_targets=["linear_qkv"],
                               resume_if_exists=True, seq_length=4096).cell, LLAMA.model, "/m", ["nemo"])
    for piece in ["peft.dim=16", "peft.alpha=32", "peft.target_modules=['linear_qkv']", "data.seq_length=4096",
                  "resume.resume_if_exists=true", "resume.resume_ignore_no_checkpoint=true"]:
        assert piece in lora


def test_published_memory_verdicts() -> None:
    verdict = lambda pc: assess([pc], IBEX)[0].prediction.verdict  # noqa: E731
    assert verdict(LLAMA) == "fits"                                   # Llama 3.1 8B LoRA on one 80 GB A100
    assert verdict(_with(LLAMA, peft="none")) == "oom"                # full FT does not fit one GPU
    assert verdict(_with(MIXTRAL, gpus=1, ep=1)) == "oom"             # Mixtral does not fit without EP >= 2
    assert verdict(_with(MIXTRAL, ep=1)) == "oom"
    assert verdict(MIXTRAL) in ("fits", "tight")                      # EP = 2 makes it fit
    assert all(a.prediction.verdict != "oom" for a in assess(WORKSHOP, IBEX))


def test_calibration_from_stored_rows() -> None:
    assert calibration_factor([(2.0, 1.0), (3.0, 1.0), (4.0, 1.0)]) == 3.0
    assert calibration_factor([]) == 1.0
    pred = assess([LLAMA], IBEX)[0].prediction.total_gib
    rows = [{"status": "completed", "device": "gpu", "peak_mem_mib": pred * 1024 * 0.5,
             "config_json": LLAMA.cell.model_dump(), "factory": "llama31_8b"}]
    factors = calibrations_from_rows(rows, "gpu")
    assert factors["llama31_8b"] == pytest.approx(0.5)
    assert assess([LLAMA], IBEX, factors)[0].prediction.total_gib == pytest.approx(pred * 0.5)
