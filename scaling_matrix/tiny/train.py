"""``llm finetune`` for the tiny engine: a real data-parallel (gloo) fine-tune printing NeMo's log lines.

Outputs under the log dir: ``checkpoints/last/`` (PEFT adapter via ``save_pretrained``, or the full model for
``peft=none``), ``tiny_summary.json``, ``memory/memory_rank<r>.csv``. Progress lines are printed by global rank 0.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import torch

from scaling_matrix.tiny import data, distributed, engine
from scaling_matrix.tiny.checkpoint import load_base_model
from scaling_matrix.tiny.cli_grammar import FinetuneArgs
from scaling_matrix.tiny.factories import get_factory
from scaling_matrix.tiny.memory import MemorySampler, memory_settings
from scaling_matrix.tiny.preflight import preflight
from scaling_matrix.tiny.progress import format_fit_stopped, format_nemo_log, format_progress_line, lr_at_step

SEED = 1234
SUMMARY_FILE = "tiny_summary.json"
RULE = "-" * 100
VAL_BATCH_SIZE = 16  # examples per validation forward; the loss is per example, so batching does not change it


class Run:
    """State of one fine-tune process (its rank, settings, model, data, and what rank 0 prints)."""

    def __init__(self, args: FinetuneArgs, dist_env: distributed.DistEnv) -> None:
        """Returns None; stores the validated arguments and the rank layout.

        Args:
            args: Parsed ``llm finetune`` arguments.
            dist_env: Rank layout (world size already checked against devices x nodes).
        """
        self.args = args
        self.dist = dist_env
        self.spec = get_factory(args.factory)
        self.peft = engine.peft_choice(self.spec, args.effective_peft, args.peft_dim,
                                       args.peft_alpha, args.peft_target_modules)
        default_lr = self.spec.full_lr if args.peft_scheme == "none" else self.spec.lora_lr
        self.max_lr = args.lr if args.lr is not None else default_lr
        self.val_loss: float | None = None

    def say(self, line: str) -> None:
        """Returns None after printing ``line`` (flushed) on global rank 0 only.

        Args:
            line: Text to print.
        """
        if self.dist.rank == 0:
            print(line, flush=True)

    def lr(self, step: int) -> float:
        """Returns the learning rate of ``step``.

        Args:
            step: 0-based global step.
        """
        a = self.args
        return lr_at_step(step, max_lr=self.max_lr, min_lr=a.min_lr, warmup_steps=a.warmup_steps,
                          max_steps=a.max_steps)


def resolve_log_dir(args: FinetuneArgs, stamp: str) -> Path:
    """Returns ``log.explicit_log_dir`` or ``<log.log_dir or ./nemo_experiments>/<log.name or factory>/<stamp>``.

    Args:
        args: Parsed arguments.
        stamp: ``YYYY-mm-dd_HH-MM-SS`` chosen on rank 0.
    """
    if args.explicit_log_dir:
        return Path(args.explicit_log_dir).absolute()
    root = Path(args.log_dir) if args.log_dir else Path.cwd() / "nemo_experiments"
    return (root / (args.log_name or args.factory) / stamp).absolute()


def run_finetune(args: FinetuneArgs, env: Mapping[str, str]) -> int:
    """Returns 0 after a complete fine-tune (errors propagate as exceptions).

    Args:
        args: Parsed ``llm finetune`` arguments.
        env: Environment mapping (rank variables, caches, memory sampler settings).
    """
    warnings.filterwarnings("ignore", category=FutureWarning)
    dist_env = preflight(args, env)
    run = Run(args, dist_env)
    if dist_env.world_size > 1 or not env.get("OMP_NUM_THREADS"):
        torch.set_num_threads(1)  # ops this small lose to thread overhead, and spinning threads collapse under load
    print(f"Initializing distributed: GLOBAL_RANK: {dist_env.rank}, MEMBER: {dist_env.rank + 1}/"
          f"{dist_env.world_size}", flush=True)
    distributed.init_process_group(dist_env)
    try:
        run.say(RULE)
        run.say("distributed_backend=gloo")
        run.say(f"All distributed processes registered. Starting with {dist_env.world_size} processes")
        run.say(RULE)
        stamp = distributed.broadcast_text(datetime.now().strftime("%Y-%m-%d_%H-%M-%S"))
        log_dir = resolve_log_dir(args, stamp)
        log_dir.mkdir(parents=True, exist_ok=True)
        run.say(format_nemo_log(f"Experiments will be logged at {log_dir}"))
        mem_dir, interval = memory_settings(log_dir, env)
        sampler = MemorySampler(mem_dir, dist_env.rank, interval).start()
        try:
            _fit(run, log_dir, env)
        finally:
            sampler.stop()
        distributed.barrier()
    finally:
        distributed.destroy_process_group()
    return 0


def _fit(run: Run, log_dir: Path, env: Mapping[str, str]) -> None:
    """Returns None after training, validation, checkpoint and summary (the body of ``Trainer.fit``)."""
    args, rank, world = run.args, run.dist.rank, run.dist.world_size
    paths = data.ensure_dataset(data.dataset_dir(log_dir, env))
    train_set = data.load_examples(paths["training"])
    val_all = data.load_examples(paths["validation"])
    val_idx = data.validation_indices(len(val_all), args.global_batch_size, args.limit_val_batches)
    val_mine = [val_all[i] for i in val_idx[rank::world]]
    torch.manual_seed(SEED)
    model = engine.apply_peft(load_base_model(args.restore_path, args.factory), run.peft, SEED)
    distributed.broadcast_parameters([p for p in model.parameters() if p.requires_grad])
    trainable, total = engine.count_parameters(model)
    run.say(format_nemo_log(f"Trainable params: {trainable} || all params: {total} || "
                            f"trainable%: {100.0 * trainable / total:.4f} (peft={run.peft.kind})"))
    optimizer = engine.make_optimizer(model, run.max_lr)
    model.train()
    losses, timings = _train_loop(run, model, optimizer, train_set, val_mine)
    if rank == 0:
        ckpt = _save_checkpoint(model, log_dir)
        run.say(format_nemo_log(f"Saved last checkpoint to {ckpt}"))
        summary = _summary(run, (trainable, total), losses, timings, len(val_idx), ckpt)
        (log_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2), encoding="utf-8")
    distributed.barrier()
    run.say(format_fit_stopped(args.max_steps))


def _train_loop(run: Run, model: Any, optimizer: torch.optim.Optimizer, train_set: list[data.QAExample],
                val_mine: list[data.QAExample]) -> tuple[list[float], list[float]]:
    """Returns ``(reduced_train_loss, step seconds)`` of every step; prints progress and validation lines."""
    args, losses, timings = run.args, [], []
    window: list[tuple[float, float, float]] = []
    for step in range(args.max_steps):
        epoch, iteration, batch = data.global_batch(step, len(train_set), args.global_batch_size, SEED)
        mine = [train_set[i] for i in data.rank_shard(batch, run.dist.rank, run.dist.world_size)]
        lr = run.lr(step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        start = time.perf_counter()
        loss = engine.train_step(model, optimizer, mine, args.micro_batch_size, args.seq_length)
        timings.append(time.perf_counter() - start)
        window.append((lr, loss, timings[-1]))
        losses.append(loss)
        last = step == args.max_steps - 1
        if (step + 1) % args.val_check_interval == 0 or last:
            _validate(run, model, val_mine)
        if (step + 1) % args.log_every_n_steps == 0 or last:
            run.say(_progress(run, epoch, iteration, step, window))
            window = []
    return losses, timings


def _progress(run: Run, epoch: int, iteration: int, step: int, window: list[tuple[float, float, float]]) -> str:
    """Returns the progress line of ``step`` with lr, loss and timing averaged over the log window."""
    n = len(window)
    return format_progress_line(
        epoch=epoch, iteration=iteration, max_steps=run.args.max_steps,
        lr=sum(w[0] for w in window) / n, global_batch_size=run.args.global_batch_size, global_step=step,
        reduced_train_loss=sum(w[1] for w in window) / n, train_step_timing=sum(w[2] for w in window) / n,
        consumed_samples=(step + 1) * run.args.global_batch_size if step > 0 else None, val_loss=run.val_loss,
    )


def _validate(run: Run, model: Any, val_mine: list[data.QAExample]) -> None:
    """Returns None after computing ``run.val_loss`` over all ranks (skipped when the subset is empty)."""
    count = distributed.all_reduce_sum([float(len(val_mine))])[0]
    if count == 0:
        return
    run.val_loss = engine.validation_loss(model, val_mine, run.args.seq_length, VAL_BATCH_SIZE)
    batches = -(-len(val_mine) // VAL_BATCH_SIZE)
    run.say(f"Validation: iteration {batches}/{batches}")


def _save_checkpoint(model: Any, log_dir: Path) -> Path:
    """Returns ``<log_dir>/checkpoints/last`` after ``save_pretrained`` (adapter or full model)."""
    out = log_dir / "checkpoints" / "last"
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    return out


def _summary(run: Run, params: tuple[int, int], losses: list[float], timings: list[float], n_val: int,
             ckpt: Path) -> dict[str, Any]:
    """Returns the ``tiny_summary.json`` content (``params`` = trainable, total)."""
    a = run.args
    steady = timings[1:] or timings
    return {
        "workload": "tiny", "device": "cpu", "factory": a.factory, "peft": run.peft.kind,
        "peft_scheme": a.peft_scheme, "lora_dim": run.peft.dim if run.peft.kind == "lora" else None,
        "lora_alpha": run.peft.alpha if run.peft.kind == "lora" else None,
        "lora_target_modules": list(run.peft.targets), "world_size": run.dist.world_size,
        "devices": a.devices, "num_nodes": a.num_nodes, "trainable_params": params[0], "total_params": params[1],
        "max_steps": a.max_steps, "global_batch_size": a.global_batch_size, "micro_batch_size": a.micro_batch_size,
        "seq_length": a.seq_length, "lr": run.max_lr, "min_lr": a.min_lr, "warmup_steps": a.warmup_steps,
        "first_train_loss": losses[0], "last_train_loss": losses[-1], "final_val_loss": run.val_loss,
        "val_examples": n_val, "train_step_timing_mean_s": sum(steady) / len(steady),
        "train_time_s": sum(timings), "seed": SEED, "torch_version": torch.__version__,
        "restore_path": str(Path(a.restore_path).absolute()), "checkpoint": str(ckpt),
    }
