"""NeMo-Run grammar of the tiny engine: pure parsing, then the real CLI's error contract (exit 1, one line)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scaling_matrix.tiny.cli_grammar import (
    GrammarError,
    check_batch_divisible,
    parse_factory,
    parse_finetune,
    parse_import,
    parse_value,
)
from scaling_matrix.tiny.distributed import resolve_dist_env

from .helpers import clean_env, run_engine

BASE = ["--factory", "tiny_llama", "--yes", "resume.restore_config.path=/models/tiny"]


def test_parse_value_literals() -> None:
    assert parse_value("8") == 8
    assert parse_value("1e-4") == pytest.approx(1e-4)
    assert parse_value("0.5") == 0.5
    assert parse_value("True") is True and parse_value("false") is False
    assert parse_value("none") is None and parse_value("null") is None
    assert parse_value("['linear_qkv','linear_proj']") == ["linear_qkv", "linear_proj"]
    with pytest.raises(GrammarError):  # NeMo-Run needs literal items: an unquoted name fails
        parse_value("[linear_qkv,'linear_proj']")
    assert parse_value('"8"') == "8"
    assert parse_value("/a/b=c") == "/a/b=c"


@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_parse_value_integers_round_trip(n: int) -> None:
    assert parse_value(str(n)) == n


def test_finetune_defaults_and_workshop_overrides() -> None:
    args = parse_finetune(BASE + ["trainer.devices=4", "trainer.max_steps=250", "trainer.limit_val_batches=10",
                                  "optim.lr_scheduler.warmup_steps=50", "data.global_batch_size=8",
                                  "trainer.strategy.expert_model_parallel_size=1"])
    assert (args.devices, args.max_steps, args.limit_val_batches, args.warmup_steps) == (4, 250, 10, 50)
    assert args.restore_path == "/models/tiny" and args.yes
    assert args.effective_peft == "lora" and args.lr is None and args.seq_length == 128
    assert args.micro_batch_size == 1 and args.num_nodes == 1


def test_finetune_peft_keys() -> None:
    args = parse_finetune(BASE + ["peft=none"])
    assert args.effective_peft == "none" and args.peft_scheme == "lora"
    assert parse_finetune(BASE + ["peft=null"]).effective_peft == "none"
    args = parse_finetune(BASE + ["peft.dim=4", "peft.alpha=8", "peft.target_modules=['linear_qkv','linear_proj']"])
    assert (args.peft_dim, args.peft_alpha, args.peft_target_modules) == (4, 8, ["linear_qkv", "linear_proj"])


def test_bare_list_rejected_like_nemo_run() -> None:
    """NeMo-Run cannot parse ``[linear_qkv,linear_proj]`` as a list (reference/nemo-real.md): neither can we."""
    with pytest.raises(GrammarError, match="as typing.List"):
        parse_finetune(BASE + ["peft.target_modules=[linear_qkv,linear_proj]"])


def test_factory_inline_peft_scheme() -> None:
    assert parse_factory("tiny_llama") == ("tiny_llama", {})
    assert parse_factory("tiny_llama(peft_scheme='none')") == ("tiny_llama", {"peft_scheme": "none"})
    args = parse_finetune(["--factory=tiny_llama(peft_scheme=None)", "resume.restore_config.path=/m"])
    assert args.effective_peft == "none"
    with pytest.raises(GrammarError, match="peft_scheme only"):
        parse_factory("tiny_llama(seq_length=4)")


@pytest.mark.parametrize("value", ["1", "None", "null"])
def test_parallel_keys_accept_off_values(value: str) -> None:
    parse_finetune(BASE + [f"trainer.strategy.tensor_model_parallel_size={value}",
                           f"trainer.strategy.pipeline_model_parallel_size={value}",
                           f"trainer.strategy.context_parallel_size={value}"])
    parse_finetune(BASE + ["trainer.strategy.sequence_parallel=False"])


def test_model_parallel_keys_parse() -> None:
    args = parse_finetune(BASE + ["trainer.strategy.tensor_model_parallel_size=2",
                                  "trainer.strategy.expert_model_parallel_size=4",
                                  "trainer.strategy.expert_tensor_parallel_size=2",
                                  "trainer.strategy.sequence_parallel=True"])
    assert (args.tensor_model_parallel_size, args.expert_model_parallel_size, args.expert_tensor_parallel_size,
            args.sequence_parallel) == (2, 4, 2, True)
    defaults = parse_finetune(BASE + ["trainer.strategy.tensor_model_parallel_size=None",
                                      "trainer.strategy.expert_tensor_parallel_size=null"])
    assert (defaults.tensor_model_parallel_size, defaults.expert_model_parallel_size,
            defaults.expert_tensor_parallel_size, defaults.sequence_parallel) == (1, 1, None, False)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("trainer.foo=1", "unknown override 'trainer.foo'"),
        ("trainer.strategy.pipeline_model_parallel_size=2",
         "trainer.strategy.pipeline_model_parallel_size=2 is not supported by the tiny engine yet (pipeline "
         "parallelism)"),
        ("trainer.strategy.context_parallel_size=2",
         "trainer.strategy.context_parallel_size=2 is not supported by the tiny engine yet (context parallelism)"),
        ("trainer.strategy.virtual_pipeline_model_parallel_size=2",
         "trainer.strategy.virtual_pipeline_model_parallel_size=2 is not supported by the tiny engine yet"),
        ("trainer.strategy.tensor_model_parallel_size=0", "invalid value for trainer.strategy.tensor_model_parallel"),
        ("trainer.max_steps=abc", "invalid value for trainer.max_steps"),
        ("data.micro_batch_size=0", "invalid value for data.micro_batch_size"),
        ("peft=dora", "invalid value for peft"),
        ("positional", "unexpected argument 'positional'"),
    ],
)
def test_finetune_rejections(override: str, message: str) -> None:
    with pytest.raises(GrammarError) as err:
        parse_finetune(BASE + [override])
    assert message in str(err.value)


def test_finetune_requires_factory_and_restore_path() -> None:
    with pytest.raises(GrammarError, match="--factory is required"):
        parse_finetune(["resume.restore_config.path=/m"])
    with pytest.raises(GrammarError, match=r"resume.restore_config.path is required"):
        parse_finetune(["--factory", "tiny_llama"])


def test_import_grammar() -> None:
    args = parse_import(["model=tiny_llama", "source=tiny://seed/7", "output_path=/x", "overwrite=True", "--yes"])
    assert (args.factory, args.source, args.output_path, args.overwrite, args.yes) == (
        "tiny_llama", "tiny://seed/7", "/x", True, True)
    with pytest.raises(GrammarError, match="unknown override 'revision'"):
        parse_import(["model=tiny_llama", "source=tiny://seed/7", "revision=main"])


def test_batch_divisibility_message_is_megatrons() -> None:
    check_batch_divisible(8, 2, 2)
    with pytest.raises(AssertionError) as err:
        check_batch_divisible(8, 3, 1)
    assert str(err.value) == ("global batch size (8) is not divisible by micro batch size (3) times data parallel "
                              "size (1)")


def test_resolve_dist_env_sources() -> None:
    torch_env = resolve_dist_env({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1", "MASTER_ADDR": "h",
                                  "MASTER_PORT": "1234", "SLURM_PROCID": "0", "SLURM_NTASKS": "4"})
    assert (torch_env.rank, torch_env.world_size, torch_env.master_addr, torch_env.master_port,
            torch_env.source) == (1, 2, "h", 1234, "torch")
    slurm = resolve_dist_env({"SLURM_PROCID": "3", "SLURM_NTASKS": "4", "SLURM_LOCALID": "1",
                              "SLURM_JOB_ID": "123457"})
    assert (slurm.rank, slurm.world_size, slurm.local_rank, slurm.master_addr, slurm.master_port,
            slurm.source) == (3, 4, 1, "127.0.0.1", 20000 + 123457 % 20000, "slurm")
    single = resolve_dist_env({})
    assert (single.rank, single.world_size, single.source) == (0, 1, "single")
    with pytest.raises(ValueError, match="outside world size"):
        resolve_dist_env({"RANK": "2", "WORLD_SIZE": "2"})


# --- the real CLI: every failure is one "Unexpected error: <msg>" line on stderr and exit code 1 ---------------


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("trainer.foo=1", "Unexpected error: unknown override 'trainer.foo'"),
        ("trainer.strategy.pipeline_model_parallel_size=2",
         "Unexpected error: trainer.strategy.pipeline_model_parallel_size=2 is not supported by the tiny engine yet "
         "(pipeline parallelism)"),
    ],
)
def test_cli_bad_override_exits_1(override: str, message: str) -> None:
    done = run_engine(["llm", "finetune"] + BASE + [override])
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [message]


def test_cli_without_yes_asks_and_declines(tmp_path: Path) -> None:
    done = run_engine(["llm", "finetune", "--factory", "tiny_llama", f"resume.restore_config.path={tmp_path}"],
                      stdin="n\n")
    assert done.returncode == 1
    assert "Continue? [y/N]: " in done.stdout
    assert "Initializing distributed" not in done.stdout


def test_cli_world_size_must_match_devices_times_nodes(tmp_path: Path) -> None:
    env = clean_env({"RANK": "0", "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "1"})
    done = run_engine(["llm", "finetune"] + BASE + ["trainer.num_nodes=1"], env=env)
    assert done.returncode == 1
    line = done.stderr.strip().splitlines()[-1]
    assert line.startswith("Unexpected error: world size (2)") and "trainer.devices (1)" in line
    assert "trainer.num_nodes (1)" in line


def test_cli_megatron_divisibility_error() -> None:
    done = run_engine(["llm", "finetune"] + BASE + ["data.micro_batch_size=3"])
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        "Unexpected error: global batch size (8) is not divisible by micro batch size (3) times data parallel "
        "size (1)")


def test_cli_missing_checkpoint(tmp_path: Path) -> None:
    done = run_engine(["llm", "finetune", "--factory", "tiny_llama", "--yes",
                       f"resume.restore_config.path={tmp_path / 'nothing'}"])
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith("Unexpected error: no complete tiny checkpoint at")


def test_cli_usage_error() -> None:
    done = run_engine(["llm", "pretrain"])
    assert done.returncode == 2 and "usage:" in done.stderr


def test_cli_without_yes_continues_on_y(tmp_path: Path) -> None:
    done = run_engine(["llm", "finetune", "--factory", "tiny_llama", f"resume.restore_config.path={tmp_path}"],
                      stdin="y\n")
    assert "Continue? [y/N]: " in done.stdout and "Launching None..." in done.stdout
    assert done.returncode == 1  # got past the prompt; the empty directory is no imported checkpoint
    assert done.stderr.strip().splitlines()[-1].startswith("Unexpected error: no complete tiny checkpoint at")
