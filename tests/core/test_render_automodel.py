"""AutoModel recipe YAML (golden) and version-aware launch commands."""

from __future__ import annotations

import yaml

from scaling_matrix.config.loading import load_matrix
from scaling_matrix.matrix import expand
from scaling_matrix.render.automodel import (automodel_launch_argv, render_automodel_config,
                                             render_automodel_yaml)
from tests.conftest import golden

CELLS = {pc.cell.job_name: pc for pc in expand(load_matrix("workshop"))}


def test_llama_lora_recipe_golden() -> None:
    pc = CELLS["l-lo-4g"]
    text = render_automodel_yaml(render_automodel_config(pc.cell, pc.model, "/ckpt/l-lo-4g"))
    golden("automodel/l-lo-4g.yaml", text)
    cfg = yaml.safe_load(text)
    assert cfg["model"]["pretrained_model_name_or_path"] == "meta-llama/Llama-3.1-8B"
    assert cfg["peft"]["dim"] == 8 and cfg["peft"]["alpha"] == 16
    assert cfg["peft"]["target_modules"] == ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    assert cfg["step_scheduler"]["global_batch_size"] == 8 and cfg["step_scheduler"]["max_steps"] == 250


def test_mixtral_tp_sp_and_full_ft() -> None:
    mp = [p for p in expand(load_matrix("workshop")) if p.cell.job_name == "m-lo-8g" and p.cell.tp == 4][0]
    cfg = render_automodel_config(mp.cell, mp.model, "/c", local_path="/models/mixtral-hf")
    assert cfg["distributed"]["tp_size"] == 4 and cfg["distributed"]["sequence_parallel"] is True
    assert cfg["model"]["pretrained_model_name_or_path"] == "/models/mixtral-hf"
    assert cfg["peft"]["dim"] == 32 and cfg["peft"]["target_modules"] == ["q_proj", "k_proj", "v_proj", "o_proj"]
    full = render_automodel_config(CELLS["l-mp-2g"].cell, CELLS["l-mp-2g"].model, "/c")
    assert "peft" not in full and full["optimizer"]["lr"] == 1e-5


def test_launch_argv_by_version() -> None:
    assert automodel_launch_argv("c.yaml", 8, "0.2.0") == ["automodel", "finetune", "llm", "-c", "c.yaml",
                                                             "--nproc-per-node", "8"]
    assert automodel_launch_argv("c.yaml", 4, "0.5.1") == ["automodel", "c.yaml", "--nproc-per-node", "4"]
