"""Rendered argv: golden files for every workshop cell, and faithfulness to the upstream scripts."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from scaling_matrix.config.loading import load_matrix, load_profile
from scaling_matrix.matrix import expand
from scaling_matrix.paths import model_path
from scaling_matrix.render.nemo import finetune_argv, import_argv
from scaling_matrix.render.shell import shell_join
from tests.conftest import golden

WORKSHOP = expand(load_matrix("workshop"))
IBEX = load_profile("ibex")
BASE = ["trainer.max_steps=250", "trainer.limit_val_batches=10", "optim.lr_scheduler.warmup_steps=50",
        "data.global_batch_size=8"]
S = "trainer.strategy."


def upstream_overrides(job: str, n: int, model_dir: str) -> list[str]:
    """Return the overrides of upstream script ``job`` (reference/workshop.md §1, SLURM vars resolved)."""
    devices = [f"trainer.devices={n}"]
    if job.startswith("l-mp"):  # T: before devices
        devices = ["peft=none", f"{S}tensor_model_parallel_size={n}", *devices]
    return devices + BASE + [f"resume.restore_config.path={model_dir}"]


EXPECTED_EXTRA = {  # (job, gpus, tp) -> lines after trainer.devices
    ("m-lo-2g", 2, 1): [f"{S}expert_model_parallel_size=2"],
    ("m-lo-4g", 4, 1): [f"{S}expert_model_parallel_size=4"],
    ("m-lo-8g", 8, 1): [f"{S}expert_model_parallel_size=8"],
    ("m-lo-4g", 4, 2): [f"{S}expert_model_parallel_size=2", f"{S}tensor_model_parallel_size=2",
                        f"{S}sequence_parallel=True"],
    ("m-lo-8g", 8, 4): [f"{S}expert_model_parallel_size=2", f"{S}tensor_model_parallel_size=4",
                        f"{S}sequence_parallel=True"],
}


@pytest.mark.parametrize("pc", WORKSHOP, ids=lambda pc: pc.cell.slug)
def test_workshop_argv_matches_upstream_script(pc) -> None:
    restore = str(model_path(pc.model, IBEX))
    argv = finetune_argv(pc.cell, pc.model, restore, ["nemo"])
    assert argv[:6] == ["nemo", "llm", "finetune", "--factory", pc.model.factory, "--yes"]
    expected = upstream_overrides(pc.cell.job_name, pc.cell.gpus, restore)
    extra = EXPECTED_EXTRA.get((pc.cell.job_name, pc.cell.gpus, pc.cell.tp), [])
    i = expected.index(f"trainer.devices={pc.cell.gpus}") + 1
    expected[i:i] = extra
    assert argv[6:] == expected


def test_workshop_argv_golden() -> None:
    lines = []
    for pc in WORKSHOP:
        argv = finetune_argv(pc.cell, pc.model, model_path(pc.model, IBEX), ["nemo"],
                             log_dir=f"/runs/RUN/{pc.cell.slug}/nemo_log")
        lines.append(f"# {pc.cell.key} ({pc.cell.job_name})\n{shell_join(argv)}\n")
    golden("argv/workshop-finetune.txt", "\n".join(lines))


def test_smoke_argv_golden() -> None:
    profile = load_profile("local")
    lines = []
    for pc in expand(load_matrix("smoke")):
        argv = finetune_argv(pc.cell, pc.model, "/home/.scaling/models/tiny_llama",
                             ["python3", "-m", "scaling_matrix.tiny"], log_dir=f"/runs/RUN/{pc.cell.slug}/nemo_log")
        lines.append(f"# {pc.cell.key}\n{shell_join(argv)}\n")
        imp = import_argv(pc.model, "/home/.scaling/models/tiny_llama", ["python3", "-m", "scaling_matrix.tiny"])
        lines.append(f"# import\n{shell_join(imp)}\n")
    assert profile.workload == "tiny"
    golden("argv/smoke.txt", "\n".join(lines))


def test_import_argv_always_yes_and_quoted_once() -> None:
    pc = WORKSHOP[0]
    argv = import_argv(pc.model, "/models/with space/it's", ["nemo"])
    assert argv[-1] == "--yes" and "overwrite=True" in argv
    assert shlex.split(shell_join(argv)) == argv  # one round of quoting, lossless


def test_list_overrides_are_nemo_run_literals_quoted_once() -> None:
    """NeMo-Run parses ``['linear_qkv','linear_proj']`` (a bare ``[a,b]`` fails); the shell quoting of
    that word happens once, in shell_join (golden: every override the renderer can emit)."""
    lines = []
    for pc in expand(load_matrix(str(Path(__file__).parents[1] / "fixtures/matrices/contract-coverage.yaml"))):
        argv = finetune_argv(pc.cell, pc.model, model_path(pc.model, IBEX), ["nemo"], log_dir="/runs/RUN/x")
        assert shlex.split(shell_join(argv)) == argv
        lines.append(f"# {pc.cell.key}\n{shell_join(argv)}\n")
    text = "\n".join(lines)
    golden("argv/contract-coverage.txt", text)
    assert "'peft.target_modules=['\"'\"'linear_qkv'\"'\"','\"'\"'linear_proj'\"'\"','\"'\"'linear_fc1'\"'\"']'" in text
