"""Real fine-tunes through the CLI: 1 rank, 2 ranks (gloo DDP), full fine-tune; outputs reload and agree."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scaling_matrix.tiny import data, engine
from scaling_matrix.tiny.memory import CSV_HEADER

from .helpers import FinetuneRun, progress_lines

MAX_STEPS = 30
# The session fixtures behind these tests start real engine processes (about 20 s each on 2 cores).
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::FutureWarning")]


def _summary(run: FinetuneRun) -> dict:
    """Returns the run's tiny_summary.json."""
    return json.loads((run.log_dir / "tiny_summary.json").read_text())


def _assert_succeeded(run: FinetuneRun) -> None:
    for rank, done in enumerate(run.ranks):
        assert done.returncode == 0, f"rank {rank}: {done.stderr[-2000:]}"


@pytest.mark.parametrize("which", ["run_1rank", "run_2rank"])
def test_progress_lines_and_loss_decrease(which: str, request: pytest.FixtureRequest) -> None:
    run: FinetuneRun = request.getfixturevalue(which)
    _assert_succeeded(run)
    lines = progress_lines(run.rank0.stdout)
    assert [int(p["global_step"]) for p in lines] == list(range(MAX_STEPS))
    assert all(p["last_iteration"] == str(MAX_STEPS - 1) and p["global_batch_size"] == "8" for p in lines)
    assert "consumed_samples" not in lines[0] and lines[-1]["consumed_samples"] == str(MAX_STEPS * 8)
    assert "val_loss" not in lines[13] and "val_loss" in lines[14] and "val_loss" in lines[-1]
    first, last = float(lines[0]["reduced_train_loss"]), float(lines[-1]["reduced_train_loss"])
    assert last < first - 1.0, (first, last)
    assert all(float(p["train_step_timing in s"]) > 0 for p in lines)
    stdout = run.rank0.stdout
    assert f"`Trainer.fit` stopped: `max_steps={MAX_STEPS}` reached." in stdout.splitlines()
    world = len(run.ranks)
    assert f"All distributed processes registered. Starting with {world} processes" in stdout
    assert f"] Experiments will be logged at {run.log_dir}" in stdout
    for rank, done in enumerate(run.ranks):
        assert f"Initializing distributed: GLOBAL_RANK: {rank}, MEMBER: {rank + 1}/{world}" in done.stdout
        if rank > 0:
            assert not progress_lines(done.stdout)


@pytest.mark.parametrize("which", ["run_1rank", "run_2rank"])
def test_memory_csv_per_rank(which: str, request: pytest.FixtureRequest) -> None:
    run: FinetuneRun = request.getfixturevalue(which)
    _assert_succeeded(run)
    for rank in range(len(run.ranks)):
        rows = (run.log_dir / "memory" / f"memory_rank{rank}.csv").read_text().splitlines()
        assert rows[0] == CSV_HEADER and len(rows) >= 3
        for row in rows[1:]:
            stamp, index, name, used, total = row.split(", ")
            assert index == str(rank) and name == "cpu-rss (tiny workload)"
            assert 0 < int(used) < int(total)
            assert len(stamp) == len("2026/11/22 20:40:01.123")


def test_one_and_two_ranks_agree(run_1rank: FinetuneRun, run_2rank: FinetuneRun) -> None:
    """Data parallelism changes who computes what, not the maths: same global batches, same losses."""
    one, two = _summary(run_1rank), _summary(run_2rank)
    assert (one["world_size"], two["world_size"]) == (1, 2)
    assert two["last_train_loss"] == pytest.approx(one["last_train_loss"], rel=1e-3)
    assert two["final_val_loss"] == pytest.approx(one["final_val_loss"], rel=1e-3)


@pytest.mark.parametrize("which", ["run_1rank", "run_2rank"])
def test_lora_adapter_reloads_and_reproduces_val_loss(which: str, request: pytest.FixtureRequest,
                                                      base_model_loader) -> None:
    from peft import PeftModel

    run: FinetuneRun = request.getfixturevalue(which)
    _assert_succeeded(run)
    summary = _summary(run)
    assert summary["peft"] == "lora" and summary["workload"] == "tiny" and summary["device"] == "cpu"
    assert 0 < summary["trainable_params"] < summary["total_params"]
    ckpt = run.log_dir / "checkpoints" / "last"
    assert (ckpt / "adapter_config.json").is_file() and (ckpt / "adapter_model.safetensors").is_file()
    model = PeftModel.from_pretrained(base_model_loader(), ckpt)
    assert _val_loss(model, run, summary) == pytest.approx(summary["final_val_loss"], abs=1e-5)


def test_full_finetune_saves_full_model(run_full: FinetuneRun) -> None:
    from transformers import AutoModelForCausalLM

    _assert_succeeded(run_full)
    summary = _summary(run_full)
    assert summary["peft"] == "none" and summary["trainable_params"] == summary["total_params"]
    ckpt = run_full.log_dir / "checkpoints" / "last"
    assert (ckpt / "config.json").is_file() and (ckpt / "model.safetensors").is_file()
    assert not (ckpt / "adapter_config.json").exists()
    model = AutoModelForCausalLM.from_pretrained(ckpt)
    assert _val_loss(model, run_full, summary) == pytest.approx(summary["final_val_loss"], abs=1e-5)
    lines = progress_lines(run_full.rank0.stdout)
    assert float(lines[-1]["reduced_train_loss"]) < float(lines[0]["reduced_train_loss"])


def _val_loss(model, run: FinetuneRun, summary: dict) -> float:
    """Returns the validation loss recomputed in this process on the run's validation subset."""
    datasets = Path(run.log_dir).parent / "datasets" / "tiny_squad" / "validation.json"
    examples = data.load_examples(datasets)[: summary["val_examples"]]
    losses = engine.example_losses(model, examples, summary["seq_length"], batch_size=32)
    return sum(losses) / len(losses)
