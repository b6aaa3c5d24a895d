"""scripts/megatron_bridge_fields.py: the regenerator of the pinned Megatron-Bridge launch surface, on a
small synthetic source tree shaped like the real one (inherited dataclass fields across packages,
star-exported recipes with aliases, argparse options, constants); and, where a real checkout is given
($MEGATRON_BRIDGE_SRC, with its 3rdparty/Megatron-LM), byte-equality with the committed file."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.history.conftest import load_script

PINNED = Path(__file__).resolve().parents[2] / "scaling_matrix" / "data" / "megatron_bridge-0.5.0.json"
FILES = {
    "src/megatron/bridge/__init__.py": "",
    "src/megatron/bridge/training/__init__.py": "",
    "src/megatron/bridge/training/config.py": (
        "from dataclasses import dataclass, field\n"
        "from megatron.training.config import TrainingConfig as MTrain, ValidationConfig\n"
        "from megatron.bridge.peft.base import PEFT\n"
        "@dataclass\nclass TrainingConfig(MTrain):\n    num_epochs: float | None = None\n"
        "    _hidden: bool = False\n    derived: int = field(default=0, init=False)\n"
        "@dataclass\nclass ConfigContainer:\n    train: TrainingConfig\n    validation: ValidationConfig\n"
        "    model: object\n    dataset: object\n    peft: Optional[PEFT] = None\n"),
    "src/megatron/bridge/models/gpt_provider.py": (
        "from megatron.core.transformer_config import TransformerConfig\n"
        "class GPTModelProvider(TransformerConfig):\n    seq_length: int = 2048\n"),
    "src/megatron/bridge/data/builders/hf_dataset.py": "class HFDatasetConfig:\n    seq_length: int = 0\n",
    "src/megatron/bridge/peft/base.py": "class PEFT:\n    pass\n",
    "src/megatron/bridge/peft/lora.py": "from .base import PEFT\nclass LoRA(PEFT):\n    dim: int = 32\n",
    "src/megatron/bridge/recipes/__init__.py": "from megatron.bridge.recipes.llama import *\n",
    "src/megatron/bridge/recipes/llama/__init__.py": (
        "from .llama3 import llama31_8b_peft_config, llama31_8b_sft_config as llama31_8b_sft_config\n"
        "__all__ = ['llama31_8b_peft_config', 'llama31_8b_sft_config', 'not_a_recipe']\n"),
    "src/megatron/bridge/recipes/llama/llama3.py": (
        "def llama31_8b_peft_config(peft_scheme='lora'):\n    pass\ndef llama31_8b_sft_config():\n    pass\n"),
    "src/megatron/bridge/recipes/utils/dataset_utils.py": (
        "DATASET_TYPES = ['llm-finetune']\nLLM_FINETUNE_PRESETS = {'squad': f}\n"),
    "scripts/training/run_recipe.py": (
        "def parse_args():\n    parser = argparse.ArgumentParser()\n"
        "    parser.add_argument('--recipe', type=str, required=True)\n"
        "    parser.add_argument('--dataset', choices=DATASET_TYPES)\n"
        "    parser.add_argument('--packed_sequence', action='store_true')\n"),
    "examples/conversion/convert_checkpoints.py": (
        "import_parser = sub.add_parser('import')\nimport_parser.add_argument('--hf-model', required=True)\n"),
    "mlm/megatron/training/config/__init__.py": "from .training_config import *\n",
    "mlm/megatron/training/config/training_config.py": (
        "class TrainingConfig:\n    train_iters: int | None = None\n    global_batch_size: int | None = None\n"
        "class ValidationConfig:\n    eval_iters: int | None = 100\n"),
    "mlm/megatron/core/transformer_config.py": (
        "from megatron.core.model_parallel_config import ModelParallelConfig\n"
        "class TransformerConfig(ModelParallelConfig):\n    num_layers: int = 0\n"),
    "mlm/megatron/core/model_parallel_config.py": "class ModelParallelConfig:\n    tensor_model_parallel_size: int = 1\n",
}


def test_extracts_inherited_fields_recipes_and_options(tmp_path: Path) -> None:
    for rel, text in FILES.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    script = load_script("megatron_bridge_fields")
    doc = script.build(tmp_path, tmp_path / "mlm", "v9.9.9", "c0ffee", "beef")
    assert (doc["version"], doc["commit"], doc["megatron_lm_commit"]) == ("9.9.9", "c0ffee", "beef")
    assert doc["sections"]["train"]["fields"] == {"train_iters": "int | None", "global_batch_size": "int | None",
                                                  "num_epochs": "float | None"}  # _hidden, init=False left out
    assert doc["sections"]["model"]["fields"] == {"tensor_model_parallel_size": "int", "num_layers": "int",
                                                  "seq_length": "int"}
    assert doc["sections"]["validation"]["class"] == "megatron.training.config.training_config.ValidationConfig"
    assert doc["recipes"] == {"llama31_8b_peft_config": ["peft_scheme"], "llama31_8b_sft_config": []}
    assert doc["run_recipe"]["options"]["--packed_sequence"] == {"takes_value": False}
    assert doc["run_recipe"]["options"]["--recipe"] == {"takes_value": True, "required": True}
    assert doc["dataset_types"] == ["llm-finetune"] and doc["llm_finetune_presets"] == ["squad"]
    assert doc["convert_checkpoints"]["import_options"] == {"--hf-model": {"takes_value": True, "required": True}}


@pytest.mark.skipif(not os.environ.get("MEGATRON_BRIDGE_SRC"), reason="set MEGATRON_BRIDGE_SRC to a v0.5.0 checkout")
def test_regenerating_from_the_tag_gives_the_committed_file(tmp_path: Path) -> None:
    pinned = json.loads(PINNED.read_text())
    out = tmp_path / "regenerated.json"
    load_script("megatron_bridge_fields").main(["--bridge", os.environ["MEGATRON_BRIDGE_SRC"], "--tag", pinned["tag"],
                                               "--commit", pinned["commit"], "--megatron-lm-commit",
                                               pinned["megatron_lm_commit"], "--out", str(out)])
    assert out.read_text() == PINNED.read_text()
