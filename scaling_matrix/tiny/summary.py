"""``tiny_summary.json``: what a tiny fine-tune ran, its losses and timings, and the facts a memory model needs.

Keys (besides run settings and losses): the layout (``dp``, ``tp``, ``pp``, ``cp``, ``ep``, ``etp``, ``edp``,
``sp``), the architecture (``model_type``, ``hidden_size``, ``num_layers``, ``vocab_size``, ``intermediate_size``,
``num_attention_heads``, ``num_key_value_heads``, ``num_experts``, ``moe_top_k``), the full model's
``total_params`` / ``trainable_params`` / ``expert_params`` / ``non_expert_params``, and ``params_per_rank``: one
entry per global rank with that rank's local (sharded) ``total``, ``trainable``, ``expert`` and ``non_expert``
counts. Weights, gradients and AdamW's two moments are float32 (``param_dtype``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

SUMMARY_FILE = "tiny_summary.json"


def architecture(config: dict[str, Any], model_type: str) -> dict[str, Any]:
    """Returns the architecture facts of a factory config (experts 0 for a dense model).

    Args:
        config: The factory's Hugging Face config kwargs.
        model_type: ``llama`` or ``mixtral``.
    """
    return {
        "model_type": model_type, "hidden_size": config["hidden_size"], "num_layers": config["num_hidden_layers"],
        "vocab_size": config["vocab_size"], "intermediate_size": config["intermediate_size"],
        "num_attention_heads": config["num_attention_heads"], "num_key_value_heads": config["num_key_value_heads"],
        "num_experts": config.get("num_local_experts", 0), "moe_top_k": config.get("num_experts_per_tok", 0),
    }


def build_summary(run: Any, counts: dict[str, int], per_rank: list[dict[str, int]], losses: list[float],
                  timings: list[float], n_val: int, ckpt: Path, seed: int) -> dict[str, Any]:
    """Returns the ``tiny_summary.json`` content.

    Args:
        run: The :class:`scaling_matrix.tiny.train.Run`.
        counts: Full-model counts (``total``, ``trainable``, ``expert``, ``non_expert``).
        per_rank: Local counts of every rank.
        losses: ``reduced_train_loss`` of every step.
        timings: Step wall seconds of rank 0.
        n_val: Validation examples used.
        ckpt: The saved checkpoint directory.
        seed: The engine's seed (adapter initialisation, data order).
    """
    a, peft = run.args, run.peft
    steady = timings[1:] or timings
    layout = {k: v for k, v in run.layout.describe().items() if k != "world"}
    return {
        "workload": "tiny", "device": "cpu", "factory": a.factory, "peft": peft.kind,
        "peft_scheme": a.peft_scheme, "lora_dim": peft.dim if peft.kind == "lora" else None,
        "lora_alpha": peft.alpha if peft.kind == "lora" else None,
        "lora_target_modules": list(peft.targets), "world_size": run.dist.world_size,
        "devices": a.devices, "num_nodes": a.num_nodes, **layout,
        **architecture(dict(run.spec.config), run.spec.model_type),
        "trainable_params": counts["trainable"], "total_params": counts["total"],
        "expert_params": counts["expert"], "non_expert_params": counts["non_expert"],
        "params_per_rank": per_rank, "param_dtype": "float32", "optimizer": "adamw",
        "max_steps": a.max_steps, "global_batch_size": a.global_batch_size, "micro_batch_size": a.micro_batch_size,
        "seq_length": a.seq_length, "lr": run.max_lr, "min_lr": a.min_lr, "warmup_steps": a.warmup_steps,
        "first_train_loss": losses[0], "last_train_loss": losses[-1], "train_losses": losses,
        "final_val_loss": run.val_loss, "val_examples": n_val,
        "train_step_timing_mean_s": sum(steady) / len(steady), "train_time_s": sum(timings), "seed": seed,
        "torch_version": torch.__version__, "restore_path": str(Path(a.restore_path).absolute()),
        "checkpoint": str(ckpt),
    }

