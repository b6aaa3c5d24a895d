"""NeMo AutoModel recipe YAML and launch command for a cell (reference/nemo.md §11, nemo-real.md).

AutoModel trains Hugging Face checkpoints directly (FSDP2 + optional TP/CP/PP), so a cell maps to:
model id or local path, PEFT (dim/alpha/targets), SQuAD dataset, batch sizes, TP/CP/PP/SP, validation.
The grammar is the one of the contracted AutoModel release (scaling_matrix/versions.py), checked by
the real library in the contract tier (contract/check_automodel.py): a top-level ``recipe:`` (without
it the CLI exits "YAML config must specify a recipe target"), ``seed:`` at top level (0.7 reads no
``rng:`` section) and ``distributed.strategy: fsdp2`` (a ``_target_`` there is silently dropped).
"""

from __future__ import annotations

from typing import Any

import yaml

from scaling_matrix.config.models import CellSpec, ModelSpec
from scaling_matrix.errors import ConfigError
from scaling_matrix.recipes import recipe_for
from scaling_matrix.versions import Contract, contract_for, supported

RECIPE = "TrainFinetuneRecipeForNextTokenPrediction"

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


def automodel_contract(version: str | None, field: str = "automodel_version") -> Contract:
    """Return the AutoModel contract of ``version`` (None: the newest contracted one).

    Raises:
        ConfigError: no contract for ``version``, naming the supported ones.
    """
    contract = contract_for("automodel", version)
    if contract is None:
        raise ConfigError(f"{field} {version}", "no contract for this nemo-automodel version",
                          f"use one of: {supported('automodel')}")
    return contract


def automodel_cell_problems(cell: CellSpec, model: ModelSpec, contract: Contract) -> dict[str, str]:
    """Return {field: why} for the fields of ``cell`` AutoModel ``contract`` cannot run (empty: it can)."""
    problems = {}
    if cell.ep > 1 and model.name not in contract.ep_models:
        problems["ep"] = (f"ep={cell.ep}, but nemo-automodel {contract.release} has no expert parallelism for "
                          f"{model.name} (no AutoModel MoE implementation of it; distributed.ep_size > 1 "
                          "fails 'Expert parallelism … requires a MoE model')")
    if cell.vp is not None:
        problems["vp"] = f"vp={cell.vp}, but nemo-automodel {contract.release} has no virtual pipeline setting"
    if cell.etp is not None:
        problems["etp"] = f"etp={cell.etp}, but nemo-automodel {contract.release} has no expert tensor parallel setting"
    return problems


def automodel_cell_error(cell: CellSpec, model: ModelSpec, contract: Contract, where: str = "") -> ConfigError | None:
    """Return the error naming the cell's unsupported fields and the AutoModel release, or None."""
    problems = automodel_cell_problems(cell, model, contract)
    if not problems:
        return None
    return ConfigError(f"{where}cell {cell.key}." + "/".join(problems), "; ".join(problems.values()),
                       f"set {' and '.join(f'{k}: 1' if k == 'ep' else f'no {k}' for k in problems)} for "
                       "AutoModel, run the cell with `nemo llm finetune`, or pass --skip-unsupported")


def _distributed(cell: CellSpec) -> dict[str, Any]:
    dist: dict[str, Any] = {"strategy": "fsdp2", "dp_size": None, "tp_size": cell.tp, "cp_size": cell.cp,
                            "pp_size": cell.pp, "sequence_parallel": cell.sp}
    if cell.ep > 1:
        dist["ep_size"] = cell.ep
    if cell.pp > 1:
        dist["pipeline"] = {}  # AutoModel's defaults (pp_size > 1 without this block is an error)
    return dist


def render_automodel_config(cell: CellSpec, model: ModelSpec, checkpoint_dir: str,
                            local_path: str | None = None, seed: int = 1111,
                            contract: Contract | None = None) -> dict[str, Any]:
    """Return the AutoModel fine-tuning recipe of ``cell`` as a dict (dump it as YAML).

    Raises:
        ConfigError: the cell uses a feature the contracted AutoModel release lacks (names the field).
    """
    contract = contract or automodel_contract(None)
    error = automodel_cell_error(cell, model, contract)
    if error:
        raise error
    val_every = cell.val_check_interval or max(1, cell.max_steps // 5)
    cfg: dict[str, Any] = {
        "recipe": RECIPE,
        "seed": seed,
        "step_scheduler": {"global_batch_size": cell.global_batch_size, "local_batch_size": cell.micro_batch_size,
                           "max_steps": cell.max_steps, "val_every_steps": val_every,
                           "ckpt_every_steps": cell.ckpt_every_n_steps or cell.max_steps, "num_epochs": 1},
        "dist_env": {"backend": "nccl", "timeout_minutes": 10},
        "model": {"_target_": "nemo_automodel.NeMoAutoModelForCausalLM.from_pretrained",
                  "pretrained_model_name_or_path": hf_model_id(model, local_path)},
        "distributed": _distributed(cell),
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


def automodel_launch_argv(config_path: str, nproc_per_node: int, version: str = "0.7.0") -> list[str]:
    """Return the launch argv for AutoModel ``version``.

    Before 0.4.0 the CLI is ``automodel finetune llm -c cfg.yaml``; the signature changed in 0.4.0
    ("0.4.0 · 26.04 CLI Signature Change", AutoModel's breaking-changes doc) to ``automodel cfg.yaml``.
    """
    major, minor = (int(p) for p in (version.split(".") + ["0"])[:2])
    if (major, minor) < (0, 4):
        return ["automodel", "finetune", "llm", "-c", config_path, "--nproc-per-node", str(nproc_per_node)]
    return ["automodel", config_path, "--nproc-per-node", str(nproc_per_node)]
