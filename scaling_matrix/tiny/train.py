"""``llm finetune`` for the tiny engine: a real data-, tensor-, sequence- and expert-parallel (gloo) fine-tune
printing NeMo's log lines.

Outputs under the log dir: ``checkpoints/last/`` (PEFT adapter via ``save_pretrained``, or the full model for
``peft=none``; model-parallel shards are gathered into the full tensors first), ``tiny_summary.json`` (see
:mod:`scaling_matrix.tiny.summary`), ``memory/memory_rank<r>.csv``. Progress lines are printed by global rank 0.
Data are sharded by data-parallel rank: the TP ranks of one DP replica see the same micro-batches.
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

from scaling_matrix.tiny import data, distributed, engine, parallel
from scaling_matrix.tiny.checkpoint import load_base_model
from scaling_matrix.tiny.cli_grammar import FinetuneArgs
from scaling_matrix.tiny.comm import ParallelGroups, build_groups
from scaling_matrix.tiny.factories import get_factory
from scaling_matrix.tiny.faults import Injector
from scaling_matrix.tiny.memory import MemorySampler, memory_settings
from scaling_matrix.tiny.preflight import layout_for, preflight
from scaling_matrix.tiny.progress import format_fit_stopped, format_nemo_log, format_progress_line, lr_at_step
from scaling_matrix.tiny.summary import SUMMARY_FILE, build_summary

SEED = 1234
RULE = "-" * 100
VAL_BATCH_SIZE = 16  # examples per validation forward; the loss is per example, so batching does not change it


class Run:
    """State of one fine-tune process (its rank, settings, model, data, and what rank 0 prints)."""

    def __init__(self, args: FinetuneArgs, dist_env: distributed.DistEnv, faults: Injector | None = None) -> None:
        """Returns None; stores the validated arguments and the rank layout.

        Args:
            args: Parsed ``llm finetune`` arguments.
            dist_env: Rank layout (world size already checked against devices x nodes).
            faults: the injected fault (test tooling); None: none.
        """
        self.args = args
        self.faults = faults or Injector(None)
        self.dist = dist_env
        self.layout = layout_for(args, dist_env.world_size)
        self.dp_rank = self.layout.coords(dist_env.rank)["dp"]
        self.groups: ParallelGroups | None = None
        self.reducer: engine.GradientReducer = engine.DataParallelReducer()
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


def run_finetune(args: FinetuneArgs, env: Mapping[str, str], faults: Injector | None = None) -> int:
    """Returns 0 after a complete fine-tune (errors propagate as exceptions).

    Args:
        args: Parsed ``llm finetune`` arguments.
        env: Environment mapping (rank variables, caches, memory sampler settings).
        faults: the injected fault (test tooling, ``faults.py``); None: none.
    """
    warnings.filterwarnings("ignore", category=FutureWarning)
    dist_env = preflight(args, env)
    run = Run(args, dist_env, faults)
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
    args, rank, layout = run.args, run.dist.rank, run.layout
    paths = data.ensure_dataset(data.dataset_dir(log_dir, env))
    train_set = data.load_examples(paths["training"])
    val_all = data.load_examples(paths["validation"])
    val_idx = data.validation_indices(len(val_all), args.global_batch_size, args.limit_val_batches)
    val_mine = [val_all[i] for i in val_idx[run.dp_rank :: layout.dp]]
    model, full_counts = _build_model(run)
    run.say(format_nemo_log(f"Trainable params: {full_counts['trainable']} || all params: {full_counts['total']} || "
                            f"trainable%: {100.0 * full_counts['trainable'] / full_counts['total']:.4f} "
                            f"(peft={run.peft.kind})"))
    per_rank = parallel.counts_per_rank(model)
    optimizer = engine.make_optimizer(model, run.max_lr)
    model.train()
    losses, timings = _train_loop(run, model, optimizer, train_set, val_mine)
    ckpt = _save_checkpoint(run, model, log_dir)
    if rank == 0:
        run.say(format_nemo_log(f"Saved last checkpoint to {ckpt}"))
        summary = build_summary(run, full_counts, per_rank, losses, timings, len(val_idx), ckpt, SEED)
        (log_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2), encoding="utf-8")
    distributed.barrier()
    run.say(format_fit_stopped(args.max_steps))
    run.faults.at_end()


def _build_model(run: Run) -> tuple[Any, dict[str, int]]:
    """Returns ``(model to train, full-model parameter counts)``; the model is sharded for a model-parallel layout.

    LoRA is applied to the full model on every rank (same seed, then rank 0's values broadcast) before sharding,
    so every layout starts from the 1-rank run's exact weights.
    """
    torch.manual_seed(SEED)
    model = engine.apply_peft(load_base_model(run.args.restore_path, run.args.factory), run.peft, SEED)
    distributed.broadcast_parameters([p for p in model.parameters() if p.requires_grad])
    full_counts = parallel.local_counts(model)
    if run.layout.model_parallel:
        run.groups = build_groups(run.layout, run.dist.rank)
        model = parallel.parallelize(model, run.spec, run.groups)
        run.reducer = parallel.ModelParallelReducer(run.groups)
        run.say(format_nemo_log(f"Model parallel layout: {run.layout.describe()}"))
    return model, full_counts


def _train_loop(run: Run, model: Any, optimizer: torch.optim.Optimizer, train_set: list[data.QAExample],
                val_mine: list[data.QAExample]) -> tuple[list[float], list[float]]:
    """Returns ``(reduced_train_loss, step seconds)`` of every step; prints progress and validation lines."""
    args, losses, timings = run.args, [], []
    window: list[tuple[float, float, float]] = []
    for step in range(args.max_steps):
        run.faults.at_step(step)
        epoch, iteration, batch = data.global_batch(step, len(train_set), args.global_batch_size, SEED)
        mine = [train_set[i] for i in data.rank_shard(batch, run.dp_rank, run.layout.dp)]
        lr = run.lr(step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        start = time.perf_counter()
        loss = engine.train_step(model, optimizer, mine, args.micro_batch_size, args.seq_length, run.reducer)
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
    batches = -(-len(val_mine) // VAL_BATCH_SIZE)
    most = int(distributed.all_reduce_max(float(batches))) if run.layout.ep > 1 else 0
    run.val_loss = engine.validation_loss(model, val_mine, run.args.seq_length, VAL_BATCH_SIZE, run.reducer, most)
    run.say(f"Validation: iteration {batches}/{batches}")


def _save_checkpoint(run: Run, model: Any, log_dir: Path) -> Path:
    """Returns ``<log_dir>/checkpoints/last`` after ``save_pretrained`` (adapter or full model) on rank 0.

    A model-parallel run first gathers the full tensors (a collective on every rank) and saves them through a fresh
    unsharded copy, so the checkpoint is the same format as a 1-rank run's.
    """
    out = log_dir / "checkpoints" / "last"
    if run.groups is None:
        if run.dist.rank == 0:
            out.mkdir(parents=True, exist_ok=True)
            model.save_pretrained(out)
        return out
    state = parallel.full_state(model, run.groups, trainable_only=run.peft.kind == "lora")
    if run.dist.rank == 0:
        fresh = engine.apply_peft(load_base_model(run.args.restore_path, run.args.factory), run.peft, SEED)
        parallel.load_full_state(fresh, state)
        out.mkdir(parents=True, exist_ok=True)
        fresh.save_pretrained(out)
    return out
