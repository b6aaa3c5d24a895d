"""NeMo AutoModel recipe YAML and launch command for a cell (reference/nemo.md §11, seed 001).

AutoModel trains Hugging Face checkpoints directly (FSDP2 + optional TP/CP), so a cell maps to:
model id or local path, PEFT (dim/alpha/targets), SQuAD dataset, batch sizes, TP/CP/SP, validation.
"""

from __future__ import annotations

from typing import Any

import yaml

from scaling_matrix.config.models import CellSpec, ModelSpec
from scaling_matrix.recipes import recipe_for

SQUAD = "nemo_automodel.components.datasets.llm.squad.make_squad_dataset"
LOADER = "torchdata.stateful_dataloader.StatefulDataLoader"
COLLATE = "nemo_automodel.components.datasets.utils.default_collater"
#: NeMo-style LoRA target names -> HF module names (AutoModel matches HF names).
HF_TARGETS = {"linear_qkv": ["q_proj", "k_proj", "v_proj"], "linear_proj": ["o_proj"],
              "linear_fc1": ["gate_proj", "up_proj"], "linear_fc2": ["down_proj"]}


def hf_model_id(model: ModelSpec, local_path: str | None = None) -> str:
    """Return what AutoModel loads: a local HF directory if given, else the hub id of ``source``."""
    if local_path:
        return local_path
    return model.source.removeprefix("hf://")


def _peft(cell: CellSpec, model: ModelSpec) -> dict[str, Any] | None:
    if cell.peft == "none":
        return None
    recipe = recipe_for(model.factory)
    targets = cell.lora_targets or (list(recipe.lora_targets) if recipe else None)
    peft: dict[str, Any] = {"_target_": "nemo_automodel.components._peft.lora.PeftConfig",
                            "dim": cell.lora_dim or (recipe.lora_dim if recipe else 8),
                            "alpha": cell.lora_alpha or (recipe.lora_alpha if recipe else 16),
                            "use_triton": True}
    if targets:
        peft["target_modules"] = [hf for t in targets for hf in HF_TARGETS.get(t, [t])]
    else:
        peft["match_all_linear"] = True
    return peft


def render_automodel_config(cell: CellSpec, model: ModelSpec, checkpoint_dir: str,
                            local_path: str | None = None, seed: int = 1111) -> dict[str, Any]:
    """Return the AutoModel fine-tuning recipe of ``cell`` as a dict (dump it as YAML)."""
    val_every = cell.val_check_interval or max(1, cell.max_steps // 5)
    cfg: dict[str, Any] = {
        "step_scheduler": {"global_batch_size": cell.global_batch_size, "local_batch_size": cell.micro_batch_size,
                           "max_steps": cell.max_steps, "val_every_steps": val_every,
                           "ckpt_every_steps": cell.ckpt_every_n_steps or cell.max_steps, "num_epochs": 1},
        "dist_env": {"backend": "nccl", "timeout_minutes": 10},
        "rng": {"_target_": "nemo_automodel.components.training.rng.StatefulRNG", "seed": seed, "ranked": True},
        "model": {"_target_": "nemo_automodel.NeMoAutoModelForCausalLM.from_pretrained",
                  "pretrained_model_name_or_path": hf_model_id(model, local_path)},
        "distributed": {"_target_": "nemo_automodel.components.distributed.fsdp2.FSDP2Manager",
                        "dp_size": None, "tp_size": cell.tp, "cp_size": cell.cp, "sequence_parallel": cell.sp},
        "loss_fn": {"_target_": "nemo_automodel.components.loss.masked_ce.MaskedCrossEntropy"},
        "dataset": {"_target_": SQUAD, "dataset_name": "rajpurkar/squad", "split": "train"},
        "packed_sequence": {"packed_sequence_size": 0},
        "dataloader": {"_target_": LOADER, "collate_fn": COLLATE, "batch_size": cell.micro_batch_size,
                       "shuffle": False},
        "validation_dataset": {"_target_": SQUAD, "dataset_name": "rajpurkar/squad", "split": "validation",
                               "limit_dataset_samples": max(1, cell.limit_val_batches) * cell.micro_batch_size},
        "validation_dataloader": {"_target_": LOADER, "collate_fn": COLLATE, "batch_size": cell.micro_batch_size},
        "optimizer": {"_target_": "torch.optim.Adam", "betas": [0.9, 0.999], "eps": 1e-8,
                      "lr": cell.lr or (1e-4 if cell.peft == "lora" else 1e-5), "weight_decay": 0},
        "checkpoint": {"enabled": True, "checkpoint_dir": checkpoint_dir},
    }
    peft = _peft(cell, model)
    if peft:
        cfg["peft"] = peft
    return cfg


def render_automodel_yaml(cfg: dict[str, Any]) -> str:
    """Return ``cfg`` as YAML text (key order kept)."""
    return yaml.safe_dump(cfg, sort_keys=False)


def automodel_launch_argv(config_path: str, nproc_per_node: int, version: str = "0.5.0") -> list[str]:
    """Return the launch argv for the installed AutoModel ``version``.

    Up to v0.2.x the CLI is ``automodel finetune llm -c cfg.yaml``; from v0.5.0 it is
    ``automodel cfg.yaml`` (reference/nemo.md §11).
    """
    major, minor = (int(p) for p in (version.split(".") + ["0"])[:2])
    if (major, minor) < (0, 5):
        return ["automodel", "finetune", "llm", "-c", config_path, "--nproc-per-node", str(nproc_per_node)]
    return ["automodel", config_path, "--nproc-per-node", str(nproc_per_node)]
