"""Session fixtures for the tiny engine: one import and a few real fine-tune runs in subprocesses, shared."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .helpers import FinetuneRun, clean_env, finetune_args, launch_ranks, run_engine


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Returns a session directory holding the shared import, data set cache and runs."""
    return tmp_path_factory.mktemp("tiny")


@pytest.fixture(scope="session")
def tiny_env(tiny_root: Path) -> dict[str, str]:
    """Returns the environment for engine subprocesses (shared data set cache, fast memory sampling)."""
    return clean_env({"NEMO_DATASETS_CACHE": str(tiny_root / "datasets"), "SCALING_MEMORY_INTERVAL_S": "0.2"})


@pytest.fixture(scope="session")
def imported(tiny_root: Path) -> Path:
    """Returns a ``tiny_llama`` import made once per session (in-process; the CLI import has its own tests)."""
    from scaling_matrix.tiny.checkpoint import import_checkpoint

    return import_checkpoint("tiny_llama", "tiny://seed/1234", tiny_root / "model", overwrite=False)


@pytest.fixture(scope="session")
def imported_mixtral(tiny_root: Path) -> Path:
    """Returns a ``tiny_mixtral`` import made once per session (in-process)."""
    from scaling_matrix.tiny.checkpoint import import_checkpoint

    return import_checkpoint("tiny_mixtral", "tiny://seed/1234", tiny_root / "model_mixtral", overwrite=False)


@pytest.fixture(scope="session")
def run_1rank(imported: Path, tiny_root: Path, tiny_env: dict[str, str]) -> FinetuneRun:
    """Returns a 1-rank LoRA run of 30 steps, global batch 8, seq 128 (validation every 15 steps)."""
    log_dir = tiny_root / "run_1rank"
    args = finetune_args(imported, log_dir, "trainer.max_steps=30", "data.global_batch_size=8",
                         "data.seq_length=128", "trainer.val_check_interval=15", "trainer.limit_val_batches=8")
    return FinetuneRun(log_dir, [run_engine(args, env=tiny_env)])


@pytest.fixture(scope="session")
def run_2rank(imported: Path, tiny_root: Path, tiny_env: dict[str, str]) -> FinetuneRun:
    """Returns a 2-rank (gloo data-parallel) LoRA run with the same settings as ``run_1rank``."""
    log_dir = tiny_root / "run_2rank"
    args = finetune_args(imported, log_dir, "trainer.devices=2", "trainer.max_steps=30",
                         "data.global_batch_size=8", "data.seq_length=128", "trainer.val_check_interval=15",
                         "trainer.limit_val_batches=8")
    return FinetuneRun(log_dir, launch_ranks(args, 2, tiny_env))


@pytest.fixture(scope="session")
def run_full(imported: Path, tiny_root: Path, tiny_env: dict[str, str]) -> FinetuneRun:
    """Returns a short 1-rank full fine-tune (``peft=none``)."""
    log_dir = tiny_root / "run_full"
    args = finetune_args(imported, log_dir, "peft=none", "trainer.max_steps=8", "trainer.limit_val_batches=2")
    return FinetuneRun(log_dir, [run_engine(args, env=tiny_env)])


@pytest.fixture(scope="session")
def base_model_loader(imported: Path) -> Iterator[object]:
    """Returns a callable loading a fresh copy of the imported base model (in this process)."""
    from scaling_matrix.tiny.checkpoint import load_base_model

    yield lambda: load_base_model(imported, "tiny_llama")
