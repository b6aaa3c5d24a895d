"""Tiny engine: a real, CPU-sized stand-in for NeMo 2 (``nemo llm import`` / ``nemo llm finetune``).

Entry point: ``python -m scaling_matrix.tiny llm <import|finetune> ...`` (console script ``tiny-nemo``),
see :func:`scaling_matrix.tiny.__main__.main`. It speaks NeMo-Run's command grammar and prints NeMo's log lines,
but trains a tiny Llama- or Mixtral-architecture model (PyTorch + PEFT) on a generated SQuAD-format data set.

Factories (``--factory``): ``tiny_llama`` (dense) and ``tiny_mixtral`` (8 experts, top-2), see
:mod:`scaling_matrix.tiny.factories`.

Parallelism (all real, over torch.distributed gloo, one process per rank): data parallelism, plus
``trainer.strategy.tensor_model_parallel_size`` (Megatron column/row-parallel attention and MLP, vocab-parallel
embedding and output layer), ``trainer.strategy.sequence_parallel=True`` (norm/residual regions split along the
sequence) and, for ``tiny_mixtral``, ``trainer.strategy.expert_model_parallel_size`` (experts split over ranks,
tokens dispatched with ``all_to_all``); ``expert_tensor_parallel_size`` may only be left at its default (= TP).
Layout: world = DP x TP on the dense side and ETP x EP x EDP on the expert side (Megatron's "MoE parallel folding":
EP does not reduce DP). Megatron's rules are checked before torch is imported and fail with Megatron's texts
(:mod:`scaling_matrix.tiny.layout`). Pipeline, virtual-pipeline and context parallelism (> 1) are rejected. Every
layout trains the same model as one rank: see :mod:`scaling_matrix.tiny.tensor_parallel`,
:mod:`scaling_matrix.tiny.expert_parallel` and :mod:`scaling_matrix.tiny.parallel` for the design.

Import sources (``source=``):
    ``tiny://seed/<int>``: a randomly initialised model of the chosen factory, seeded with ``<int>``; the same
    factory and seed always give bit-identical weights.

Checkpoint layout (``output_path``, default ``$NEMO_MODELS_CACHE/tiny/<factory>-seed<seed>``):
    ``weights/`` (HF ``save_pretrained``: ``config.json``, ``model.safetensors``), ``context/model.yaml``,
    ``context/nemo_tokenizer/tiny_byte_tokenizer.json`` and, written last, ``context/io.json`` (completeness
    marker, see :func:`scaling_matrix.tiny.checkpoint.is_imported`).

Fine-tune outputs (``log.explicit_log_dir``, default ``./nemo_experiments/<factory>/<YYYY-mm-dd_HH-MM-SS>``):
    ``checkpoints/last/`` (PEFT adapter, or the full model for ``peft=none``; always unsharded),
    ``tiny_summary.json`` (settings, losses, timings, layout, architecture, per-rank parameter counts: see
    :mod:`scaling_matrix.tiny.summary`), ``memory/memory_rank<r>.csv``.

Fine-tune defaults (where no override is given): ``trainer.devices=1 trainer.num_nodes=1 trainer.max_steps=40
trainer.val_check_interval=30 trainer.limit_val_batches=None`` (all 256 validation questions)
``trainer.log_every_n_steps=1 data.global_batch_size=8 data.micro_batch_size=1 data.seq_length=128
optim.lr_scheduler.warmup_steps=5 optim.lr_scheduler.min_lr=0``; LoRA dim 8, alpha 16 on all attention and MLP
projections (``tiny_mixtral``: attention only); ``optim.config.lr`` 3e-3 for LoRA (kept by the CLI's ``peft=none``,
as NeMo does) and 1e-3 for ``--factory "tiny_llama(peft_scheme='none')"``. AdamW (betas 0.9/0.98, weight decay
0.01), grad clip 1.0, seed 1234. With these, the loss falls from about 6.0 to about 3.8 in 40 steps (LoRA, 1 or 2
ranks).

Environment variables:
    ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``/``MASTER_ADDR``/``MASTER_PORT`` (torch convention), else
    ``SLURM_PROCID``/``SLURM_NTASKS``/``SLURM_LOCALID``/``SLURM_JOB_ID``; ``NEMO_DATASETS_CACHE`` (data set cache,
    default ``<log_dir>/../datasets``); ``NEMO_MODELS_CACHE``/``NEMO_HOME`` (default import location);
    ``SCALING_MEMORY_DIR`` (default ``<log_dir>/memory``); ``SCALING_MEMORY_INTERVAL_S`` (default 0.5).
"""

from __future__ import annotations
