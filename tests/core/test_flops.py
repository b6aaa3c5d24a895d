"""FLOP formula and MFU against every published (throughput, TFLOP/s or MFU) pair in the reference
file, each with the convention its source uses: within 2 %. Negative controls show the check can fail."""

from __future__ import annotations

import pytest

from scaling_matrix.efficiency import efficiency
from scaling_matrix.flops import FlopConvention, flops_per_token, mfu, model_tflops_per_gpu, trainable_ratio
from scaling_matrix.gpus import gpu_key, peak_tflops
from scaling_matrix.recipes import RECIPES
from scaling_matrix.yardstick import ARCH_RECIPE, Reference, load_references

REFS = load_references()[1]
PAIRS = [r for r in REFS if r.tflops_per_gpu is not None or r.mfu is not None]


def predicted(ref: Reference, convention: FlopConvention | None = None) -> tuple[float, float | None]:
    """Return (model TFLOP/s per GPU, MFU) our formula gives for ``ref``'s published throughput."""
    conv = convention or FlopConvention(ref.convention["attention"], ref.convention.get("lora") or "two_thirds")
    recipe = RECIPES[ARCH_RECIPE[ref.model]]
    seq = ref.seq_length or recipe.seq_length  # only entries whose convention ignores attention lack one
    per_token = flops_per_token(recipe, seq, "lora" if ref.method == "lora" else "none", conv,
                                ratio=ref.convention.get("lora_trainable_ratio"))
    tflops = model_tflops_per_gpu(ref.tokens_per_s_per_gpu, per_token)
    return tflops, mfu(tflops, peak_tflops(ref.gpu_type, ref.precision))


def test_every_published_pair_is_checked() -> None:
    assert len(PAIRS) >= 12  # DGXC SFT/LoRA/pretrain, AutoModel, Megatron-Bridge, NeMo 24.12/25.0x
    assert {r.convention["attention"] for r in PAIRS} == {"causal", "full", "none"}
    assert {r.convention.get("lora") for r in PAIRS if r.method == "lora"} == {"two_thirds", "two_plus_r"}
    assert all(r.seq_length or r.convention["attention"] == "none" for r in PAIRS)


@pytest.mark.parametrize("ref", PAIRS, ids=lambda r: r.id)
def test_published_pair_within_two_percent(ref: Reference) -> None:
    tflops, util = predicted(ref)
    if ref.tflops_per_gpu is not None:
        assert tflops == pytest.approx(ref.tflops_per_gpu, rel=0.02), ref.id
    if ref.mfu is not None:
        assert util == pytest.approx(ref.mfu, rel=0.02), ref.id


@pytest.mark.parametrize("ref_id,wrong", [
    ("dgxc-v25.02-llama3-8b-sft-bf16-8", FlopConvention("causal")),        # SFT counted with attention: +7 %
    ("dgxc-v25.02-llama31-8b-pretrain-bf16-8", FlopConvention("causal")),  # NeMo 24.12 used full attention
    ("mbridge-25.11-llama3-8b-pretrain-fp8-8", FlopConvention("full")),    # Megatron-Bridge counts causal
    ("nemo-25.04-mixtral-8x7b-pretrain-fp8-64-gb200", FlopConvention("causal")),
])
def test_wrong_convention_misses_the_published_pair(ref_id: str, wrong: FlopConvention) -> None:
    """Negative control: the 2 % check is tight enough to tell the conventions apart."""
    ref = next(r for r in REFS if r.id == ref_id)
    tflops, util = predicted(ref, wrong)
    got, want = (util, ref.mfu) if ref.mfu is not None else (tflops, ref.tflops_per_gpu)
    assert abs(got / want - 1) > 0.02, ref_id


def test_lora_conventions_are_selectable_and_named() -> None:
    llama = RECIPES["llama31_8b"]
    dense = flops_per_token(llama, 4096, "none", FlopConvention("causal"))
    two_thirds = flops_per_token(llama, 4096, "lora", FlopConvention("causal", "two_thirds"))
    r = trainable_ratio(llama)  # NeMo recipe default: dim 8 on qkv, proj, fc1, fc2
    two_plus_r = flops_per_token(llama, 4096, "lora", FlopConvention("causal", "two_plus_r"))
    assert two_thirds == pytest.approx(dense * 2 / 3) and two_plus_r == pytest.approx(dense * (2 + r) / 3)
    assert 0.0005 < r < 0.005 and two_plus_r > two_thirds
    assert FlopConvention("causal", "two_plus_r").describe("lora") == "attention=causal, lora=(2+r)/3"
    assert FlopConvention().describe("none") == "attention=causal"
    with pytest.raises(ValueError, match="use one of"):
        FlopConvention("sometimes")


def test_moe_counts_active_experts_only() -> None:
    mixtral = RECIPES["mixtral_8x7b"]
    dense_equivalent = mixtral.model_copy(update={"experts": 0, "topk": 0})
    per_token = flops_per_token(mixtral, 4096, "none", FlopConvention("none"))
    one_expert = flops_per_token(dense_equivalent, 4096, "none", FlopConvention("none"))
    mlp = 6 * mixtral.layers * 3 * mixtral.hidden * mixtral.ffn_hidden
    assert per_token == pytest.approx(one_expert + mlp)  # top-2: one more expert MLP than dense


def test_gpu_types_and_peaks() -> None:
    assert gpu_key("NVIDIA H100 80GB HBM3 SXM5") == "h100-sxm" and gpu_key("A100-SXM4-80GB") == "a100"
    assert gpu_key("h100") == "h100-sxm" and gpu_key("potato") is None
    assert peak_tflops("a100") == 312.0 and peak_tflops("a100", "fp8") is None
    assert peak_tflops("mystery", override=123.0) == 123.0


def test_efficiency_of_a_cell_row() -> None:
    row = {"recipe": "llama31_8b", "seq_length": 4096, "peft": "lora", "tokens_per_s_per_gpu": 17809.0,
           "device": "gpu", "gpu_type": "h100-sxm", "precision": "bf16"}
    eff = efficiency(row, FlopConvention("none"))
    assert eff["mfu"] == pytest.approx(0.539, rel=0.02) and eff["flops_convention"] == "attention=none, lora=2/3"
    assert efficiency({**row, "device": "cpu", "gpu_type": None})["mfu"] is None  # no peak without a GPU
    assert efficiency({**row, "seq_length": None})["model_tflops_per_gpu"] is None
