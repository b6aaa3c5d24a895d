"""NeMo 2 CLI argv for ``nemo llm import`` and ``nemo llm finetune`` (same grammar for the tiny engine).

Override order follows the upstream workshop scripts (reference/workshop.md §1) so the rendered
argv can be compared with them line by line: ``peft=none`` and dense TP before ``trainer.devices``,
EP / MoE TP / SP after it, then steps, validation, warm-up, batch and the restore path.
"""

from __future__ import annotations

from pathlib import PurePath

from scaling_matrix.config.models import CellSpec, ModelSpec

_S = "trainer.strategy."


def _fmt(value: object) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value)


def import_argv(model: ModelSpec, output_path: str | PurePath, prefix: list[str],
                overwrite: bool = True) -> list[str]:
    """Return the argv importing ``model`` into ``output_path`` (always ``--yes``)."""
    return [*prefix, "llm", "import", f"model={model.factory}", f"source={model.source}",
            f"output_path={output_path}", f"overwrite={_fmt(overwrite)}", "--yes"]


def parallel_overrides(cell: CellSpec, model: ModelSpec) -> tuple[list[str], list[str]]:
    """Return (overrides placed before trainer.devices, overrides placed right after it)."""
    before: list[str] = []
    after: list[str] = []
    if cell.peft == "none":
        before.append("peft=none")
    if model.family == "dense" and cell.tp > 1:
        before.append(f"{_S}tensor_model_parallel_size={cell.tp}")
    if cell.ep > 1:
        after.append(f"{_S}expert_model_parallel_size={cell.ep}")
    if model.family == "moe" and cell.tp > 1:
        after.append(f"{_S}tensor_model_parallel_size={cell.tp}")
    if cell.sp:
        after.append(f"{_S}sequence_parallel=True")
    if cell.pp > 1:
        after.append(f"{_S}pipeline_model_parallel_size={cell.pp}")
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
        out.append(f"data.seq_length={cell.seq_length}")
    return out


def finetune_argv(cell: CellSpec, model: ModelSpec, restore_path: str | PurePath,
                  prefix: list[str], log_dir: str | PurePath | None = None) -> list[str]:
    """Return the ``llm finetune`` argv of one cell; values are plain words, quoted later once."""
    before, after = parallel_overrides(cell, model)
    argv = [*prefix, "llm", "finetune", "--factory", model.factory, "--yes", *before,
            f"trainer.devices={cell.devices}", *after]
    if cell.nodes > 1:
        argv.append(f"trainer.num_nodes={cell.nodes}")
    argv += training_overrides(cell)
    argv.append(f"resume.restore_config.path={restore_path}")
    if log_dir is not None:
        argv.append(f"log.explicit_log_dir={log_dir}")
    return argv
