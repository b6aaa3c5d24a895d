"""NeMo 2 CLI argv for ``nemo llm import`` and ``nemo llm finetune`` (same grammar for the tiny engine).

Override order follows the upstream workshop scripts (reference/workshop.md §1) so the rendered
argv can be compared with them line by line: ``peft=none`` and dense TP before ``trainer.devices``,
EP / MoE TP / SP after it, then steps, validation, warm-up, batch and the restore path.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import PurePath

from scaling_matrix.config.models import CellSpec, ModelSpec

_S = "trainer.strategy."


def nemo_run_literal(value: object) -> str:
    """Return ``value`` as NeMo-Run parses it: ``True``/``False``, numbers as text, and lists/tuples as
    Python literals with quoted items (``['linear_qkv','linear_proj']``; NeMo-Run rejects a bare
    ``[linear_qkv,linear_proj]`` as "Failed to parse … as typing.List"). The result is one plain word:
    shell quoting happens once, later, in :func:`scaling_matrix.render.shell.shell_join`."""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(repr(v) if isinstance(v, str) else nemo_run_literal(v) for v in value) + "]"
    return str(value)


def import_argv(model: ModelSpec, output_path: str | PurePath, prefix: list[str],
                overwrite: bool = True) -> list[str]:
    """Return the argv importing ``model`` into ``output_path`` (always ``--yes``)."""
    return [*prefix, "llm", "import", f"model={model.factory}", f"source={model.source}",
            f"output_path={output_path}", f"overwrite={nemo_run_literal(overwrite)}", "--yes"]


def parallel_overrides(cell: CellSpec, model: ModelSpec) -> tuple[list[str], list[str]]:
    """Return (overrides placed before trainer.devices, overrides placed right after it)."""
    before: list[str] = []
    after: list[str] = []
    if cell.peft == "none" and cell.peft_via == "override":
        before.append("peft=none")
    if model.family == "dense" and cell.tp > 1:
        before.append(f"{_S}tensor_model_parallel_size={cell.tp}")
    if cell.ep > 1:
        after.append(f"{_S}expert_model_parallel_size={cell.ep}")
    if model.family == "moe" and cell.tp > 1:
        after.append(f"{_S}tensor_model_parallel_size={cell.tp}")
    if cell.sp:
        after.append(f"{_S}sequence_parallel=True")
    if cell.etp is not None:
        after.append(f"{_S}expert_tensor_parallel_size={cell.etp}")
    if cell.pp > 1:
        after.append(f"{_S}pipeline_model_parallel_size={cell.pp}")
    if cell.vp is not None:
        after.append(f"{_S}virtual_pipeline_model_parallel_size={cell.vp}")
    if cell.cp > 1:
        after.append(f"{_S}context_parallel_size={cell.cp}")
    return before, after


def training_overrides(cell: CellSpec) -> list[str]:
    """Return the step/validation/optimizer/batch overrides of ``cell`` in workshop order."""
    out = [f"trainer.max_steps={cell.max_steps}", f"trainer.limit_val_batches={cell.limit_val_batches}"]
    if cell.val_check_interval is not None:
        out.append(f"trainer.val_check_interval={cell.val_check_interval}")
    out.append(f"optim.lr_scheduler.warmup_steps={cell.warmup_steps}")
    if cell.lr is not None:
        out.append(f"optim.config.lr={cell.lr}")
    out.append(f"data.global_batch_size={cell.global_batch_size}")
    if cell.micro_batch_size != 1:
        out.append(f"data.micro_batch_size={cell.micro_batch_size}")
    if cell.seq_length is not None:
        out += [f"data.seq_length={cell.seq_length}", f"model.config.seq_length={cell.seq_length}"]
    if cell.log_every_n_steps is not None:
        out.append(f"trainer.log_every_n_steps={cell.log_every_n_steps}")
    if cell.ckpt_every_n_steps is not None:
        out.append(f"log.ckpt.every_n_train_steps={cell.ckpt_every_n_steps}")
    return out


def peft_overrides(cell: CellSpec, literal: Callable[[list[str]], str] | None = None) -> list[str]:
    """Return LoRA overrides (dim, alpha, target modules) when the cell sets them; ``literal`` writes the
    target list in the reading library's grammar (NeMo-Run's by default; Megatron-Bridge passes Hydra's)."""
    if cell.peft != "lora":
        return []
    out = []
    if cell.lora_dim is not None:
        out.append(f"peft.dim={cell.lora_dim}")
    if cell.lora_alpha is not None:
        out.append(f"peft.alpha={cell.lora_alpha}")
    if cell.lora_targets:
        out.append(f"peft.target_modules={(literal or nemo_run_literal)(cell.lora_targets)}")
    return out


def factory_arg(cell: CellSpec, model: ModelSpec) -> str:
    """Return the --factory value: the recipe name, or ``name(peft_scheme='none')`` for real full FT."""
    if cell.peft == "none" and cell.peft_via == "factory":
        return f"{model.factory}(peft_scheme='none')"
    return model.factory


def finetune_argv(cell: CellSpec, model: ModelSpec, restore_path: str | PurePath,
                  prefix: list[str], log_dir: str | PurePath | None = None) -> list[str]:
    """Return the ``llm finetune`` argv of one cell; values are plain words, quoted later once."""
    before, after = parallel_overrides(cell, model)
    argv = [*prefix, "llm", "finetune", "--factory", factory_arg(cell, model), "--yes", *before,
            f"trainer.devices={cell.devices}", *after]
    if cell.nodes > 1:
        argv.append(f"trainer.num_nodes={cell.nodes}")
    argv += training_overrides(cell) + peft_overrides(cell)
    argv.append(f"resume.restore_config.path={restore_path}")
    if cell.resume_if_exists:
        argv += ["resume.resume_if_exists=true", "resume.resume_ignore_no_checkpoint=true"]
    if log_dir is not None:
        argv.append(f"log.explicit_log_dir={log_dir}")
    return argv


#: contract grammar (scaling_matrix/versions.py) -> finetune renderer. The tiny engine speaks nemo-run-cli.
FINETUNE_GRAMMARS = {"nemo-run-cli": finetune_argv}
