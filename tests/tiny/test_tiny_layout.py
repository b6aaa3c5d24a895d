"""Parallel layout of the tiny engine: Megatron's rank groups and rules, model-size checks, shard round trips."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scaling_matrix.tiny.cli_grammar import parse_finetune
from scaling_matrix.tiny.distributed import DistEnv
from scaling_matrix.tiny.factories import FACTORIES, get_factory, resolve_targets
from scaling_matrix.tiny.layout import (
    EP_TP_WITHOUT_SP,
    SP_WITHOUT_TP,
    ParallelLayout,
    check_engine_support,
    check_megatron_rules,
)
from scaling_matrix.tiny.preflight import check_layout, layout_for

from .helpers import clean_env, run_engine

S = "trainer.strategy."
BASE = ["--factory", "tiny_mixtral", "--yes", "resume.restore_config.path=/models/none"]


def test_groups_follow_megatron_rank_order() -> None:
    """tp-cp-ep-dp-pp order: TP innermost on the dense side; ETP, then EP, then EDP on the expert side."""
    folded = ParallelLayout(world=4, tp=2, ep=2, sp=True).groups()
    assert folded["tp"] == [[0, 1], [2, 3]] and folded["dp"] == [[0, 2], [1, 3]]
    assert folded["ep"] == [[0, 2], [1, 3]] and folded["edp"] == [[0], [1], [2], [3]]
    ep_only = ParallelLayout(world=4, ep=2).groups()
    assert ep_only["ep"] == [[0, 1], [2, 3]] and ep_only["edp"] == [[0, 2], [1, 3]]
    assert ep_only["dp"] == [[0, 1, 2, 3]] and ep_only["tp"] == [[0], [1], [2], [3]]
    layout = ParallelLayout(world=8, tp=2, ep=2, sp=True)
    assert (layout.dp, layout.edp, layout.expert_tp) == (4, 2, 2)
    assert layout.coords(5) == {"tp": 1, "dp": 2, "etp": 1, "ep": 0, "edp": 1}
    assert not ParallelLayout(world=2).model_parallel and ParallelLayout(world=2, ep=2).model_parallel


@given(st.sampled_from([(1, 1), (2, 1), (1, 2), (2, 2), (4, 1), (1, 4), (2, 4), (4, 2)]),
       st.sampled_from([1, 2, 4]))
def test_groups_partition_the_world(sizes: tuple[int, int], replicas: int) -> None:
    tp, ep = sizes
    layout = ParallelLayout(world=tp * ep * replicas, tp=tp, ep=ep)
    for kind, size in {"tp": tp, "dp": layout.dp, "ep": ep, "edp": layout.edp}.items():
        groups = layout.groups()[kind]
        assert sorted(r for g in groups for r in g) == list(range(layout.world))
        assert all(len(g) == size for g in groups)


@pytest.mark.parametrize(
    ("layout", "experts", "error", "message"),
    [
        (ParallelLayout(world=2, tp=4), 0, RuntimeError, "world_size (2) is not divisible by 4"),
        (ParallelLayout(world=4, tp=2, ep=4, sp=True), 8, RuntimeError,
         "decoder world_size (4) is not divisible by expert_tensor_model_pipeline_parallel size (8)"),
        (ParallelLayout(world=2, sp=True), 0, ValueError, SP_WITHOUT_TP),
        (ParallelLayout(world=4, tp=2, ep=2), 8, ValueError, EP_TP_WITHOUT_SP),
        (ParallelLayout(world=3, ep=3), 8, ValueError,
         "Expected num_moe_experts 8 to be divisible by expert_model_parallel_size 3."),
        (ParallelLayout(world=2, ep=2), 0, ValueError, "needs a Mixture-of-Experts model"),
    ],
)
def test_megatron_rules(layout: ParallelLayout, experts: int, error: type[Exception], message: str) -> None:
    with pytest.raises(error) as err:
        check_megatron_rules(layout, experts)
    assert message in str(err.value)


def test_megatron_message_texts_are_verbatim() -> None:
    assert SP_WITHOUT_TP == "Can not use sequence paralllelism without tensor parallelism"
    assert EP_TP_WITHOUT_SP == "When using expert parallelism and tensor parallelism, sequence parallelism must be used"
    check_megatron_rules(ParallelLayout(world=4, tp=2, ep=2, sp=True), 8)
    check_megatron_rules(ParallelLayout(world=8, ep=8), 8)


def test_engine_support_limits() -> None:
    llama, mixtral = dict(FACTORIES["tiny_llama"].config), dict(FACTORIES["tiny_mixtral"].config)
    check_engine_support(ParallelLayout(world=2, tp=2, sp=True), llama, 128)
    check_engine_support(ParallelLayout(world=4, tp=4), mixtral, 128)
    with pytest.raises(ValueError, match=r"num_query_groups \(num_key_value_heads\) \(2\) must be divisible"):
        check_engine_support(ParallelLayout(world=4, tp=4), llama, 128)
    with pytest.raises(ValueError, match=r"data.seq_length \(130\) must be divisible"):
        check_engine_support(ParallelLayout(world=4, tp=4, sp=True), mixtral, 130)
    with pytest.raises(ValueError, match="must equal tensor_model_parallel_size"):
        check_engine_support(ParallelLayout(world=4, tp=2, ep=2, etp=1, sp=True), mixtral, 128)


def test_preflight_layout_uses_data_parallel_size() -> None:
    args = parse_finetune(BASE + ["trainer.devices=4", f"{S}tensor_model_parallel_size=2",
                                  f"{S}expert_model_parallel_size=2", f"{S}sequence_parallel=True",
                                  "data.global_batch_size=6", "data.micro_batch_size=3"])
    check_layout(args, DistEnv(rank=0, world_size=4))  # DP = 4 / TP = 2: 6 % (3 * 2) == 0
    assert layout_for(args, 4) == ParallelLayout(world=4, tp=2, ep=2, sp=True)
    bad = parse_finetune(BASE + ["trainer.devices=4", f"{S}tensor_model_parallel_size=2",
                                 f"{S}expert_model_parallel_size=2", f"{S}sequence_parallel=True",
                                 "data.global_batch_size=6", "data.micro_batch_size=2"])
    with pytest.raises(AssertionError, match=r"micro batch size \(2\) times data parallel size \(2\)"):
        check_layout(bad, DistEnv(rank=0, world_size=4))
    fc1 = parse_finetune(BASE + ["peft.target_modules=['linear_qkv','linear_fc1']"])
    with pytest.raises(ValueError, match="LoRA target 'linear_fc1' is not supported for factory 'tiny_mixtral'"):
        check_layout(fc1, DistEnv())


def test_mixtral_factory() -> None:
    spec = get_factory("tiny_mixtral")
    assert spec.is_moe and spec.model_type == "mixtral" and spec.num_experts == 8
    assert spec.config["num_experts_per_tok"] == 2 and spec.config["router_aux_loss_coef"] == 0.0
    assert resolve_targets(spec, None) == ["q_proj", "k_proj", "v_proj", "o_proj"]
    assert resolve_targets(spec, ["linear_proj"]) == ["o_proj"]
    assert get_factory("tiny_llama").num_experts == 0


def test_shard_round_trip() -> None:
    import torch

    from scaling_matrix.tiny.sharding import shard_tensor, unshard_tensor

    full = torch.arange(2 * 8 * 3, dtype=torch.float32).view(2, 8, 3)
    for fused in (1, 2):
        parts = [shard_tensor(full, 1, r, 2, fused) for r in range(2)]
        assert all(p.shape == (2, 4, 3) for p in parts)
        assert torch.equal(unshard_tensor(parts, 1, fused), full)
    gate_up = [shard_tensor(full, 1, r, 2, fused=2) for r in range(2)]
    assert torch.equal(gate_up[0][:, :2], full[:, 0:2]) and torch.equal(gate_up[0][:, 2:], full[:, 4:6])


@pytest.mark.parametrize(
    ("world", "overrides", "message"),
    [
        (1, [f"{S}sequence_parallel=True"], f"Unexpected error: {SP_WITHOUT_TP}"),
        (4, [f"{S}tensor_model_parallel_size=2", f"{S}expert_model_parallel_size=2"],
         f"Unexpected error: {EP_TP_WITHOUT_SP}"),
        (2, [f"{S}tensor_model_parallel_size=4"], "Unexpected error: world_size (2) is not divisible by 4"),
    ],
)
def test_cli_rejects_layout_before_training(world: int, overrides: list[str], message: str, tmp_path: Path) -> None:
    env = clean_env({"RANK": "0", "WORLD_SIZE": str(world), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "1"})
    done = run_engine(["llm", "finetune", *BASE, f"trainer.devices={world}", *overrides], env=env)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [message]
    assert "Initializing distributed" not in done.stdout
