"""Published GPU memory measurements as predictor inputs: configuration, what was measured, the value.

Rows and numbers: shared/reference/memory-measurements.md §1 (row numbers kept). A row is comparable
when its architecture, method, parallelism, batch and sequence length are known (from the source or a
stated framework default); the others are listed in :data:`NOT_COMPARABLE` with the reason. Units
as printed by the source: GiB = 2^30 B, MiB = 2^20 B, Megatron-Bridge GB = 1e9 B.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from scaling_matrix import memory_terms as T

GIB, MIB, GB = 2.0**30, 2.0**20, 1e9

# Megatron-LM functional test "gpt3_7b" (row 3): 32 layers, h 4096, GQA 8 groups, ffn 4h GELU, untied,
# vocab 131073 padded by MCore to a multiple of 128 x TP (inference: 131584); MLM's default dropout 0.1.
GPT3_7B = T.Arch(32, 4096, 16384, 32, 8, 131584, gated=False)
# Llama 3.2 1B (row 2: "1.236 B params"): 16 layers, h 2048, ffn 8192, GQA 8, vocab 128256, tied.
LLAMA32_1B = T.Arch(16, 2048, 8192, 32, 8, 128256, tied=True)
# Llama 3 8B (rows 8-9: 8.03 B): 32 layers, h 4096, ffn 14336, GQA 8, vocab 128256, untied.
LLAMA3_8B = T.Arch(32, 4096, 14336, 32, 8, 128256)

_R3 = T.Setup(GPT3_7B, seq=8192, mbs=2, tp=4, dp=2, micro_batches=2, distributed_optimizer=True, dropout=True)
_R5 = T.Setup(GPT3_7B, seq=8192, mbs=1, pp=4, vpp=8, dp=2, micro_batches=4, distributed_optimizer=True,
              dropout=True, rank="last")
_R2 = T.Setup(LLAMA32_1B, seq=1024, mbs=1, dp=8, micro_batches=64, distributed_optimizer=True, fused_ce=True)
_R8 = T.Setup(LLAMA3_8B, seq=8192, mbs=4, dp=8, micro_batches=4, distributed_optimizer=True, fused_ce=True)
_R9 = replace(_R8, mbs=2, micro_batches=8)


@dataclass(frozen=True)
class Published:
    """One published value: the row, what it measures (``static`` or a :data:`memory_terms.TARGETS` name)."""

    row: str
    label: str
    setup: T.Setup
    quantity: str
    measured: float  # bytes

    def predicted(self) -> float:
        """Return the predicted bytes of this row's quantity."""
        t = T.terms(self.setup)
        return t.static if self.quantity == "static" else t.target(self.quantity)

    def error(self) -> float:
        """Return (predicted - measured) / measured."""
        return self.predicted() / self.measured - 1.0


PUBLISHED: tuple[Published, ...] = (
    Published("3", "gpt3_7b TP4 DP2 mbs2 s8192, H100", _R3, "static", 19.244 * GIB),
    Published("3", "gpt3_7b TP4 DP2 mbs2 s8192, H100", _R3, "max_allocated", 53.219 * GIB),
    Published("4", "gpt3_7b TP4 DP2 mbs2 s8192, A100", _R3, "static", 19.217 * GIB),
    Published("4", "gpt3_7b TP4 DP2 mbs2 s8192, A100", _R3, "max_allocated", 54.192 * GIB),
    Published("5", "gpt3_7b PP4 VPP8 DP2 mbs1 s8192, last rank", _R5, "static", 23.105 * GIB),
    Published("5", "gpt3_7b PP4 VPP8 DP2 mbs1 s8192, last rank", _R5, "max_allocated", 56.551 * GIB),
    Published("2", "Llama 3.2 1B DP8 mbs1 s1024, H100 rank 0", _R2, "static", 9554.9 * MIB),
    Published("2", "Llama 3.2 1B DP8 mbs1 s1024, H100 rank 0", _R2, "max_allocated", 12003.6 * MIB),
    Published("2", "Llama 3.2 1B DP8 mbs1 s1024, H100 rank 0", _R2, "reserved", 12232 * MIB),
    Published("2", "Llama 3.2 1B DP8 mbs1 s1024, H100 GPUs 1-7", _R2, "nvidia_smi", 16273 * MIB),
    Published("2", "Llama 3.2 1B DP8 mbs1 s1024, H100 GPU 0", _R2, "nvidia_smi", 18449 * MIB),
    Published("8", "Llama 3 8B DP8 mbs4 s8192, >200 GB GPU", _R8, "static", 51.072 * GB),
    Published("8", "Llama 3 8B DP8 mbs4 s8192, >200 GB GPU", _R8, "max_allocated", 194.41 * GB),
    Published("8", "Llama 3 8B DP8 mbs4 s8192, >200 GB GPU", _R8, "reserved", 216.89 * GB),
    Published("9", "Llama 3 8B DP8 mbs2 s8192, B200", _R9, "max_allocated", 115_792_977_920.0),
    Published("9", "Llama 3 8B DP8 mbs2 s8192, B200", _R9, "reserved", 127_785_762_816.0),
    Published("9", "Llama 3 8B DP8 mbs2 s8192, B200", _R9, "nvidia_smi", 125_156 * MIB),
)

GOAL = 0.15

#: (row, quantity) -> why the ±15 % goal is not met (checked: the test fails if the row starts to meet it)
KNOWN_MISSES: dict[tuple[str, str], str] = {
    ("2", "nvidia_smi@GPU 0"): "the GPU-0 snapshot (18449 MiB) was taken 2 min after training ended (MM row 2: "
                               "maybe a re-run or checkpoint save); GPUs 1-7 (16273 MiB) are within the goal",
    ("8", "static"): "the measured 'allocated' (51.07 GB) is below Megatron's own estimate printed in the same "
                     "log ('weight and optimizer=57438.81 MB'): the perf recipe's optimizer settings (not stated, "
                     "MM row 8) keep less state than fp32 master + Adam m, v; one step after a checkpoint load",
    ("9", "max_allocated"): "perf-script defaults (recompute, optimizer) not stated (MM row 9); the no-recompute "
                            "activation term overestimates Llama 3 8B at 8192 tokens (row 8 too, by +14.7 %)",
    ("9", "reserved"): "follows max_allocated (row 9)",
    ("9", "nvidia_smi"): "follows max_allocated (row 9)",
}

#: rows of MM §1 with no comparison, and why
NOT_COMPARABLE: dict[str, str] = {
    "1": "workshop 16273 MiB: end time after the commit that added it, and the same value is a GPU of an "
         "unrelated Llama-3.2-1B run (MM §3.1); not a measurement of the workshop cell",
    "6": "Mixtral 8x7B pretrain: GPU count (so DP, so the distributed optimizer's sharding) not in the config",
    "7": "Mixtral 8x7B pretrain: GPU count not in the config",
    "10": "Qwen3-30B-A3B: configuration not in the excerpt (used only for the reserved/allocated ratio)",
    "11": "Llama 3 70B SFT in FP8 with VPP: FP8 weights and activations are not modelled",
    "12": "Qwen3-8B LoRA: micro batch, precision and LoRA settings not stated",
    "13": "Qwen3-30B-A3B LoRA: micro batch and sequence length not stated",
    "14": "GPT-OSS-120B LoRA: micro batch and sequence length not stated",
    "15": "AutoModel (HF Transformers + FSDP2) full fine-tune: GPU count of the baseline not stated; "
          "FSDP2 parameter dtypes and HF activation layout are not Megatron's",
    "16": "AutoModel LoRA on SQuAD: one or eight GPUs (text and log disagree); FSDP2/HF layout as row 15",
    "17": "AutoModel GPT-2 pretrain: precision not stated; HF layout",
    "18": "ms-swift Qwen2.5-7B: measurement method not stated, full recompute",
    "19": "ms-swift Qwen3-30B-A3B: measurement method not stated, full recompute",
    "20": "failing FP8 run with CUDA graphs (fragmentation), not a steady peak",
}


def key(p: Published) -> tuple[str, str]:
    """Return the :data:`KNOWN_MISSES` key of ``p`` (GPU 0 nvidia-smi of row 2 is its own entry)."""
    return (p.row, p.quantity + ("@GPU 0" if p.label.endswith("GPU 0") else ""))


def table() -> str:
    """Return the predicted-vs-published markdown table with per-row error and the miss reasons."""
    lines = ["| MM row | configuration | quantity | published (GiB) | predicted (GiB) | error | note |",
             "|---|---|---|---|---|---|---|"]
    for p in PUBLISHED:
        note = KNOWN_MISSES.get(key(p), "")
        lines.append(f"| {p.row} | {p.label} | {p.quantity} | {p.measured / GIB:.2f} | {p.predicted() / GIB:.2f} "
                     f"| {p.error():+.1%} | {note} |")
    return "\n".join(lines)
