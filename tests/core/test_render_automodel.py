"""AutoModel recipe YAML (golden), the contracted release's rules, and version-aware launch commands.

The real nemo-automodel checks these recipes in the contract tier (tests/contract); here: fast, pure.
"""

from __future__ import annotations

import pytest
import yaml

from scaling_matrix.config.loading import load_matrix
from scaling_matrix.errors import ConfigError
from scaling_matrix.matrix import expand
from scaling_matrix.render.automodel import (automodel_contract, automodel_launch_argv, render_automodel_config,
                                             render_automodel_yaml)
from tests.conftest import golden

CELLS = {(pc.cell.job_name, pc.cell.tp): pc for pc in expand(load_matrix("workshop"))}


def test_llama_lora_recipe_golden() -> None:
    pc = CELLS["l-lo-4g", 1]
    text = render_automodel_yaml(render_automodel_config(pc.cell, pc.model, "/ckpt/l-lo-4g"))
    golden("automodel/l-lo-4g.yaml", text)
    cfg = yaml.safe_load(text)
    assert cfg["recipe"] == "TrainFinetuneRecipeForNextTokenPrediction"  # the CLI exits without it
    assert cfg["seed"] == 1111 and "rng" not in cfg  # 0.7 reads seed at top level, no rng section
    assert cfg["distributed"]["strategy"] == "fsdp2" and "_target_" not in cfg["distributed"]
    assert cfg["model"]["pretrained_model_name_or_path"] == "meta-llama/Llama-3.1-8B"
    assert cfg["peft"]["dim"] == 8 and cfg["peft"]["alpha"] == 16
    assert cfg["peft"]["target_modules"] == ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    assert cfg["step_scheduler"]["global_batch_size"] == 8 and cfg["step_scheduler"]["max_steps"] == 250


def test_llama_tensor_parallel_full_ft_golden() -> None:
    pc = CELLS["l-mp-4g", 4]
    text = render_automodel_yaml(render_automodel_config(pc.cell, pc.model, "/c", local_path="/models/llama-hf"))
    golden("automodel/l-mp-4g.yaml", text)
    cfg = yaml.safe_load(text)
    assert cfg["distributed"]["tp_size"] == 4 and cfg["distributed"]["pp_size"] == 1
    assert cfg["model"]["pretrained_model_name_or_path"] == "/models/llama-hf"
    assert "peft" not in cfg and cfg["optimizer"]["lr"] == 1e-5


@pytest.mark.parametrize("job,tp", [("m-lo-2g", 1), ("m-lo-8g", 4)])
def test_mixtral_expert_parallel_rejected_naming_version_and_field(job: str, tp: int) -> None:
    pc = CELLS[job, tp]
    with pytest.raises(ConfigError) as err:
        render_automodel_config(pc.cell, pc.model, "/c")
    assert err.value.field.endswith(".ep") and "nemo-automodel 0.7.0" in err.value.problem
    assert "ep: 1" in err.value.fix


def test_mixtral_without_ep_and_pipeline_render() -> None:
    pc = CELLS["m-lo-2g", 1]
    cell = pc.cell.model_copy(update={"ep": 1, "pp": 2, "global_batch_size": 8})
    cfg = render_automodel_config(cell, pc.model, "/c")
    assert "ep_size" not in cfg["distributed"] and cfg["distributed"]["pipeline"] == {}
    assert cfg["peft"]["target_modules"] == ["q_proj", "k_proj", "v_proj", "o_proj"]


def test_uncontracted_version_refused_naming_supported() -> None:
    assert automodel_contract("0.7.0").release == "0.7.0" and automodel_contract(None).release == "0.7.0"
    with pytest.raises(ConfigError, match=r"0\.7 \(nemo-automodel 0\.7\.0\)"):
        automodel_contract("0.5.0")


def test_launch_argv_by_version() -> None:
    old = ["automodel", "finetune", "llm", "-c", "c.yaml", "--nproc-per-node", "8"]
    assert automodel_launch_argv("c.yaml", 8, "0.2.0") == old
    assert automodel_launch_argv("c.yaml", 8, "0.3.9") == old
    for version in ("0.4.0", "0.5.1", "0.7.0"):  # the CLI signature changed in 0.4.0
        assert automodel_launch_argv("c.yaml", 4, version) == ["automodel", "c.yaml", "--nproc-per-node", "4"]
