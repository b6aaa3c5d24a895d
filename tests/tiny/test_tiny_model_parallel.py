"""Tensor, sequence and expert parallelism are exact: every layout trains the same model as one rank.

Same seed and data: the first-step ``reduced_train_loss`` of TP=2 (Llama), EP=2 (Mixtral) and TP=2 x EP=2 with SP
(Mixtral, 4 ranks) equals the 1-rank run's within 1e-5 (measured: a few 1e-7), every later step within 1e-4, and
the loss falls; LoRA on and off. Each run is a real multi-process CLI launch (gloo, RANK/WORLD_SIZE/MASTER_*).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scaling_matrix.tiny import data, engine
from scaling_matrix.tiny.memory import CSV_HEADER

from .helpers import FinetuneRun, finetune_args, launch_ranks, progress_lines, run_engine

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::FutureWarning")]

S = "trainer.strategy."
TP2, EP2, SP = f"{S}tensor_model_parallel_size=2", f"{S}expert_model_parallel_size=2", f"{S}sequence_parallel=True"
MAX_STEPS = 6
COMMON = (f"trainer.max_steps={MAX_STEPS}", "optim.lr_scheduler.warmup_steps=1", "data.seq_length=64",
          "data.global_batch_size=8", "trainer.limit_val_batches=1", f"trainer.val_check_interval={MAX_STEPS}")
FIRST_STEP_ABS = 1e-5
LATER_STEPS_ABS = 1e-4
# name -> (factory, ranks, overrides)
RUNS: dict[str, tuple[str, int, tuple[str, ...]]] = {
    "llama-lora-1": ("tiny_llama", 1, ()),
    "llama-lora-tp2": ("tiny_llama", 2, (TP2,)),
    "llama-full-1": ("tiny_llama", 1, ("peft=none",)),
    "llama-full-tp2-sp": ("tiny_llama", 2, ("peft=none", TP2, SP)),
    "mixtral-lora-1": ("tiny_mixtral", 1, ()),
    "mixtral-lora-ep2": ("tiny_mixtral", 2, (EP2,)),
    "mixtral-lora-tp2-ep2-sp": ("tiny_mixtral", 4, (TP2, EP2, SP)),
    "mixtral-full-1": ("tiny_mixtral", 1, ("peft=none",)),
    "mixtral-full-ep2": ("tiny_mixtral", 2, ("peft=none", EP2)),
    "mixtral-full-tp2-ep2-sp": ("tiny_mixtral", 4, ("peft=none", TP2, EP2, SP)),
}
PAIRS = [("llama-lora-1", "llama-lora-tp2"), ("llama-full-1", "llama-full-tp2-sp"),
         ("mixtral-lora-1", "mixtral-lora-ep2"), ("mixtral-lora-1", "mixtral-lora-tp2-ep2-sp"),
         ("mixtral-full-1", "mixtral-full-ep2"), ("mixtral-full-1", "mixtral-full-tp2-ep2-sp")]


class Runs:
    """Launches each named run once, on first use."""

    def __init__(self, root: Path, models: dict[str, Path], env: dict[str, str]) -> None:
        self.root, self.models, self.env = root, models, env
        self.done: dict[str, FinetuneRun] = {}

    def get(self, name: str) -> FinetuneRun:
        if name not in self.done:
            factory, ranks, overrides = RUNS[name]
            log_dir = self.root / name
            args = finetune_args(self.models[factory], log_dir, f"trainer.devices={ranks}", *COMMON, *overrides,
                                 factory=factory)
            finished = launch_ranks(args, ranks, self.env) if ranks > 1 else [run_engine(args, env=self.env)]
            for rank, proc in enumerate(finished):
                assert proc.returncode == 0, f"{name} rank {rank}: {proc.stderr[-3000:]}"
            self.done[name] = FinetuneRun(log_dir, finished)
        return self.done[name]

    def summary(self, name: str) -> dict:
        return json.loads((self.get(name).log_dir / "tiny_summary.json").read_text())


@pytest.fixture(scope="module")
def runs(imported: Path, imported_mixtral: Path, tiny_root: Path, tiny_env: dict[str, str]) -> Runs:
    return Runs(tiny_root / "model_parallel", {"tiny_llama": imported, "tiny_mixtral": imported_mixtral}, tiny_env)


@pytest.mark.parametrize(("baseline", "parallel"), PAIRS, ids=[p for _, p in PAIRS])
def test_layout_reproduces_one_rank_losses(runs: Runs, baseline: str, parallel: str) -> None:
    one, many = runs.summary(baseline), runs.summary(parallel)
    assert abs(many["first_train_loss"] - one["first_train_loss"]) <= FIRST_STEP_ABS
    assert len(many["train_losses"]) == len(one["train_losses"]) == MAX_STEPS
    for step, (a, b) in enumerate(zip(one["train_losses"], many["train_losses"], strict=True)):
        assert abs(a - b) <= LATER_STEPS_ABS, (step, a, b)
    assert abs(many["final_val_loss"] - one["final_val_loss"]) <= LATER_STEPS_ABS
    assert many["last_train_loss"] < many["first_train_loss"] - 0.1
    printed = [float(p["reduced_train_loss"]) for p in progress_lines(runs.get(parallel).rank0.stdout)]
    assert printed == pytest.approx(many["train_losses"], rel=1e-3)
    assert all(not progress_lines(r.stdout) for r in runs.get(parallel).ranks[1:])


def test_summary_reports_layout_and_per_rank_counts(runs: Runs) -> None:
    one, mp = runs.summary("mixtral-lora-1"), runs.summary("mixtral-lora-tp2-ep2-sp")
    assert {k: mp[k] for k in ("dp", "tp", "ep", "etp", "edp", "sp", "pp", "cp")} == {
        "dp": 2, "tp": 2, "ep": 2, "etp": 2, "edp": 1, "sp": True, "pp": 1, "cp": 1}
    assert (mp["hidden_size"], mp["num_layers"], mp["vocab_size"], mp["num_experts"], mp["moe_top_k"]) == (
        64, 2, 260, 8, 2)
    assert (mp["micro_batch_size"], mp["seq_length"]) == (1, 64)
    for key in ("total_params", "trainable_params", "expert_params", "non_expert_params"):
        assert mp[key] == one[key]
    ranks = mp["params_per_rank"]
    assert [r["rank"] for r in ranks] == [0, 1, 2, 3]
    assert one["params_per_rank"][0]["expert"] == one["expert_params"] > 0
    for r in ranks:  # each rank holds 1/EP of the experts and 1/ETP of each one's FFN
        assert r["expert"] * 4 == mp["expert_params"] and r["expert"] + r["non_expert"] == r["total"]
        assert r["non_expert"] < mp["non_expert_params"] and 0 < r["trainable"] < mp["trainable_params"]
    dense = runs.summary("llama-lora-tp2")
    assert (dense["dp"], dense["tp"], dense["ep"], dense["expert_params"]) == (1, 2, 1, 0)
    assert all(r["total"] < dense["total_params"] for r in dense["params_per_rank"])


@pytest.mark.parametrize("name", ["mixtral-lora-tp2-ep2-sp", "mixtral-full-tp2-ep2-sp", "llama-lora-tp2"])
def test_gathered_checkpoint_reproduces_val_loss(runs: Runs, name: str) -> None:
    """Shards are gathered into an ordinary adapter / model that reloads on one process."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from scaling_matrix.tiny.checkpoint import load_base_model

    summary, run = runs.summary(name), runs.get(name)
    ckpt = run.log_dir / "checkpoints" / "last"
    if summary["peft"] == "lora":
        model = PeftModel.from_pretrained(load_base_model(summary["restore_path"], summary["factory"]), ckpt)
    else:
        model = AutoModelForCausalLM.from_pretrained(ckpt)
    validation = Path(run.log_dir).parent.parent / "datasets" / "tiny_squad" / "validation.json"
    examples = data.load_examples(validation)[: summary["val_examples"]]
    losses = engine.example_losses(model, examples, summary["seq_length"], batch_size=32)
    assert sum(losses) / len(losses) == pytest.approx(summary["final_val_loss"], abs=1e-5)


def test_memory_csv_for_every_rank(runs: Runs) -> None:
    run = runs.get("mixtral-full-tp2-ep2-sp")
    for rank in range(4):
        rows = (run.log_dir / "memory" / f"memory_rank{rank}.csv").read_text().splitlines()
        assert rows[0] == CSV_HEADER and len(rows) >= 3
        assert all(row.split(", ")[1] == str(rank) and int(row.split(", ")[3]) > 0 for row in rows[1:])
