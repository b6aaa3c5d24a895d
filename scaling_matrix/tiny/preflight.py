"""Torch-free checks run before a fine-tune starts, so configuration errors fail in well under a second."""

from __future__ import annotations

from collections.abc import Mapping

from scaling_matrix.tiny import distributed
from scaling_matrix.tiny.checkpoint import is_imported, read_marker
from scaling_matrix.tiny.cli_grammar import FinetuneArgs
from scaling_matrix.tiny.factories import get_factory, resolve_targets
from scaling_matrix.tiny.layout import (
    ParallelLayout,
    check_batch_divisible,
    check_engine_support,
    check_megatron_rules,
)


def preflight(args: FinetuneArgs, env: Mapping[str, str]) -> distributed.DistEnv:
    """Returns the rank layout after checking world size, parallel layout, batch sizes and the restore checkpoint.

    Args:
        args: Parsed ``llm finetune`` arguments.
        env: Environment mapping (rank variables).

    Raises:
        ValueError: World size differs from devices x nodes, a Megatron layout rule is broken, unknown factory,
            checkpoint of another factory.
        RuntimeError: Megatron's world-size divisibility messages.
        AssertionError: Megatron's batch-divisibility message.
        FileNotFoundError: ``resume.restore_config.path`` is not a complete import.
    """
    dist_env = distributed.resolve_dist_env(env)
    check_layout(args, dist_env)
    check_restore_path(args)
    return dist_env


def layout_for(args: FinetuneArgs, world_size: int) -> ParallelLayout:
    """Returns the parallel layout of a fine-tune (``trainer.strategy.*`` sizes over ``world_size`` ranks).

    Args:
        args: Parsed arguments.
        world_size: Number of processes.
    """
    return ParallelLayout(world=world_size, tp=args.tensor_model_parallel_size, ep=args.expert_model_parallel_size,
                          etp=args.expert_tensor_parallel_size, sp=args.sequence_parallel)


def check_layout(args: FinetuneArgs, dist_env: distributed.DistEnv) -> None:
    """Returns None when world size, Megatron's parallel rules, the model's dimensions and batch sizes agree.

    Args:
        args: Parsed arguments.
        dist_env: Rank layout.

    Raises:
        ValueError: World size differs from ``trainer.devices x trainer.num_nodes``; SP / EP / TP rules; a model
            dimension TP does not divide; unknown factory; a LoRA target the architecture cannot carry.
        RuntimeError: TP*PP*CP or ETP*EP*PP does not divide the world size.
        AssertionError: Megatron's batch-divisibility message.
    """
    expected = args.devices * args.num_nodes
    if dist_env.world_size != expected:
        raise ValueError(
            f"world size ({dist_env.world_size}) does not match trainer.devices ({args.devices}) x "
            f"trainer.num_nodes ({args.num_nodes}) = {expected}"
        )
    spec = get_factory(args.factory)
    layout = layout_for(args, dist_env.world_size)
    check_megatron_rules(layout, spec.num_experts)
    check_engine_support(layout, spec.config, args.seq_length)
    check_batch_divisible(args.global_batch_size, args.micro_batch_size, layout.dp)
    if args.effective_peft == "lora":
        resolve_targets(spec, args.peft_target_modules)


def check_restore_path(args: FinetuneArgs) -> None:
    """Returns None when ``resume.restore_config.path`` is a complete import of ``--factory``.

    Args:
        args: Parsed arguments.

    Raises:
        FileNotFoundError: No complete import there.
        ValueError: Unknown factory or a checkpoint of another factory.
    """
    get_factory(args.factory)
    if not is_imported(args.restore_path):
        raise FileNotFoundError(f"no complete tiny checkpoint at {args.restore_path} (run 'llm import' first)")
    imported_for = (read_marker(args.restore_path) or {}).get("factory")
    if imported_for != args.factory:
        raise ValueError(f"checkpoint {args.restore_path} was imported for factory '{imported_for}', "
                         f"not '{args.factory}'")
