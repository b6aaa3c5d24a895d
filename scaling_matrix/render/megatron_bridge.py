"""Megatron-Bridge argv: fine-tuning through ``run_recipe.py`` and HF → Megatron checkpoint import.

Launch surface of Megatron-Bridge **0.5.0** (tag v0.5.0, the NeMo Framework 26.06 container; pinned in
``scaling_matrix/data/megatron_bridge-0.5.0.json``)::

    python /opt/Megatron-Bridge/scripts/training/run_recipe.py --recipe llama31_8b_peft_config \\
        --dataset llm-finetune --seq_length 2048 dataset.dataset_name=squad section.field=value …

One process per GPU (``srun`` task, ranks from ``SLURM_PROCID``/``SLURM_NTASKS``/``SLURM_LOCALID``,
Megatron-Core ``_slurm_utils``; the local launcher sets torch's ``RANK``/``WORLD_SIZE``), as the
workshop runs ``nemo llm finetune``. Recipe per model and method: ``<factory>_peft_config`` (LoRA) or
``<factory>_sft_config`` (full fine-tuning; ``peft=none``). Overrides are Hydra-style (the launcher hands
them to OmegaConf in struct mode): every parallel size is written explicitly (the SFT recipe's default
is TP=2), booleans ``true/false``, lists ``[a,b]``, values Hydra cannot read unquoted are single-quoted
here (:func:`hydra_literal`); shell quoting happens once, later, in ``shell.shell_join``.
``--dataset llm-finetune`` + ``dataset.dataset_name=squad`` is unpacked SQuAD at ``--seq_length``
(the workshop's NeMo 2 data); the sequence length is always explicit (NeMo's recipe default 2048 unless
the cell sets one; the Bridge recipe would use 4096).
"""

from __future__ import annotations

import re
from pathlib import PurePath

from scaling_matrix.config.models import CellSpec, ModelSpec
from scaling_matrix.recipes import recipe_for
from scaling_matrix.render import nemo

BRIDGE_ROOT = "/opt/Megatron-Bridge"  # where NeMo Framework containers keep the checkout
RUN_RECIPE = "scripts/training/run_recipe.py"
CONVERT = "examples/conversion/convert_checkpoints.py"
_PLAIN = re.compile(r"[A-Za-z0-9_./+@%:-]+")


def hydra_literal(value: object) -> str:
    """Return ``value`` as a Hydra override value: plain when its grammar allows, else single-quoted
    with ``'``, backslashes before a quote and ``${`` escaped (Hydra resolves interpolations in quotes)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(hydra_literal(v) for v in value) + "]"
    text = str(value)
    if _PLAIN.fullmatch(text):
        return text
    text = re.sub(r"(\\+)(?='|$)", lambda m: m.group(1) * 2, text).replace("${", "\\${")
    return "'" + text.replace("'", "\\'") + "'"


def recipe_name(model: ModelSpec, peft: str) -> str:
    """Return the Megatron-Bridge recipe of ``model``: ``<factory>_peft_config`` or ``<factory>_sft_config``."""
    return f"{model.factory.split('(', 1)[0]}_{'peft' if peft == 'lora' else 'sft'}_config"


def seq_length(cell: CellSpec, model: ModelSpec) -> int:
    """Return the sequence length rendered for ``cell`` (explicit, else the NeMo recipe default, 2048)."""
    recipe = recipe_for(model.factory)
    return cell.seq_length or (recipe.seq_length if recipe else 2048)


def parallel_overrides(cell: CellSpec, model: ModelSpec) -> list[str]:
    """Return the model-parallel overrides (all sizes explicit; expert ones for MoE or when set)."""
    out = [f"model.tensor_model_parallel_size={cell.tp}", f"model.pipeline_model_parallel_size={cell.pp}",
           f"model.context_parallel_size={cell.cp}", f"model.sequence_parallel={hydra_literal(cell.sp)}"]
    if model.family == "moe" or cell.ep > 1:
        out.append(f"model.expert_model_parallel_size={cell.ep}")
    if cell.etp is not None:
        out.append(f"model.expert_tensor_parallel_size={cell.etp}")
    if cell.vp is not None:
        out.append(f"model.virtual_pipeline_model_parallel_size={cell.vp}")
    return out


def training_overrides(cell: CellSpec) -> list[str]:
    """Return steps, batch, validation, warm-up and learning-rate overrides."""
    out = [f"train.train_iters={cell.max_steps}", f"train.global_batch_size={cell.global_batch_size}",
           f"train.micro_batch_size={cell.micro_batch_size}", f"validation.eval_iters={cell.limit_val_batches}"]
    if cell.val_check_interval is not None:
        out.append(f"validation.eval_interval={cell.val_check_interval}")
    out.append(f"scheduler.lr_warmup_iters={cell.warmup_steps}")
    if cell.lr is not None:
        out.append(f"optimizer.lr={cell.lr}")
    if cell.log_every_n_steps is not None:
        out.append(f"logger.log_interval={cell.log_every_n_steps}")
    return out


def peft_overrides(cell: CellSpec) -> list[str]:
    """Return the LoRA overrides the cell sets (the recipe's LoRA: dim 32, alpha 32, all four linears)."""
    return nemo.peft_overrides(cell, hydra_literal)


def checkpoint_overrides(cell: CellSpec, restore_path: str | PurePath, log_dir: str | PurePath | None) -> list[str]:
    """Return where the pretrained weights come from and where checkpoints and logs go."""
    out = [f"checkpoint.pretrained_checkpoint={hydra_literal(str(restore_path))}"]
    if log_dir is not None:
        ckpt = hydra_literal(str(PurePath(log_dir) / "checkpoints"))
        out += [f"checkpoint.save={ckpt}", f"checkpoint.load={ckpt if cell.resume_if_exists else 'null'}",
                f"logger.tensorboard_dir={hydra_literal(str(PurePath(log_dir) / 'tb_logs'))}"]
    if cell.ckpt_every_n_steps is not None:
        out.append(f"checkpoint.save_interval={cell.ckpt_every_n_steps}")
    return [*out, "logger.log_throughput=true"]


def finetune_argv(cell: CellSpec, model: ModelSpec, restore_path: str | PurePath, prefix: list[str],
                  log_dir: str | PurePath | None = None) -> list[str]:
    """Return the fine-tuning argv of one cell; ``prefix`` ends with the ``run_recipe.py`` path."""
    return [*prefix, "--recipe", recipe_name(model, cell.peft), "--dataset", "llm-finetune",
            "--seq_length", str(seq_length(cell, model)), "dataset.dataset_name=squad",
            *parallel_overrides(cell, model), *training_overrides(cell), *peft_overrides(cell),
            *checkpoint_overrides(cell, restore_path, log_dir)]


def import_argv(model: ModelSpec, output_path: str | PurePath, python: list[str],
                root: str = BRIDGE_ROOT) -> list[str]:
    """Return the HF → Megatron checkpoint conversion argv (``convert_checkpoints.py import``)."""
    hf = model.source.removeprefix("hf://")
    return [*python, f"{root}/{CONVERT}", "import", "--hf-model", hf, "--megatron-path", str(output_path),
            "--torch-dtype", "bfloat16"]


#: contract grammar (scaling_matrix/versions.py) -> finetune renderer
FINETUNE_GRAMMARS = {"megatron-bridge-0.5": finetune_argv}
