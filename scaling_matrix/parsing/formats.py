"""One declarative table per log format: NeMo 2, NeMo AutoModel (text), Megatron-LM, and the job footer.

Facts: shared/reference/nemo.md §8 (NeMo 2), §11 (AutoModel), §12 (Megatron-LM); workshop.md §5 (footer).

- NeMo 2: ``Training epoch E, iteration i/N-1 | key: value | ...`` (any prefix, keys in any order,
  ``'{:.4}'`` values); ``[Sanity checking ]Validation: iteration k/N``; ``\\`Trainer.fit\\` stopped:
  \\`max_steps=N\\` reached.``
- AutoModel: ``INFO:root:step 4 | epoch 0 | loss 1.5514 | grad_norm 102.0000 | mem: 11.66 GiB | tps 6924.50``
  (v0.1) and ``<asctime> | INFO | root | step S | epoch E | loss L | grad_norm G | lr X | mem M GiB |
  tps T(P/gpu) | num_label_tokens K``; ``[val] name "n" | step S | epoch E | loss L | ...``.
- Megatron-LM: ``iteration N/ M | consumed samples: ... | elapsed time per iteration (ms): ... |
  lm loss: ... |`` and ``[Rank 0] (after N iterations) memory (MB) | allocated: ... | max allocated: ...``.
  ``validation loss at iteration N ... | lm loss value: X`` is Megatron's evaluation line (from its
  ``training.py``, not in the reference notes); ``... at the end of training for val|test data`` the final
  ones (test kept apart from val); ``[after training is done]`` its end marker; Megatron-DeepSpeed writes
  ``lm-loss:`` and ``elapsed time per iteration (s)``; Megatron-Bridge ``memory (GB)`` with
  ``mem-max-allocated-gigabytes`` (1e9 B; shared/reference/memory-measurements.md).
- NeMo 1 (Lightning tqdm bar): ``Epoch 0: : 100%|...| 50/50 [31:51<00:00, reduced_train_loss=6.130,
  global_step=50.0, ..., val_loss=6.250]`` (shared/real-logs 09); ``global_step`` counts finished steps.
- Every format: torch elastic restart markers (``Worker group FAILED ... will restart worker group``,
  ``restart_count=N``) and the job footer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from scaling_matrix.parsing.rules import (
    GIB,
    MIB,
    Col,
    Rule,
    hms,
    integer,
    lead_int,
    lead_num,
    num,
    paren_num,
    present,
    scaled,
    text,
    timestamp,
)

_TS = rb"(?P<ts>\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:[.,]\d+)?)"
_F = Col  # short alias for the tables below

# --- NeMo 2 ------------------------------------------------------------------------------------
NEMO_PAIRS: dict[bytes, tuple[Col, ...]] = {
    b"lr": (_F("lr", num),),
    b"global_batch_size": (_F("global_batch_size", num),),
    b"global_step": (_F("global_step", integer),),
    b"reduced_train_loss": (_F("train_loss", num),),
    b"train_step_timing in s": (_F("step_time_s", num, "s"),),
    b"consumed_samples": (_F("consumed_samples", num),),
    b"val_loss": (_F("val_loss", num),),
    b"max_memory_reserved": (_F("max_memory_reserved", num, "B"),),
    b"max_memory_allocated": (_F("max_memory_allocated", num, "B"),),
    # NeMo 24.x MegatronStrategy logs torch.cuda.max_memory_reserved() under this name (NVIDIA/NeMo
    # @00114ea3 nemo/lightning/pytorch/strategies/megatron_strategy.py, training_step)
    b"peak_memory_usage": (_F("max_memory_reserved", num, "B"),),
    b"TFLOPS_per_GPU": (_F("tflops_per_gpu", num, "TFLOP/s"),),
    b"tokens_per_sec_per_gpu": (_F("tokens_per_s_per_gpu", num, "tokens/s"),),
}
NEMO_RULES: tuple[Rule, ...] = (
    Rule("step", b"Training epoch",
         re.compile(rb"Training epoch (?P<epoch>\d+), iteration (?P<it>\d+)/(?P<n>\d+)"),
         {"epoch": _F("epoch", integer), "it": _F("iteration", integer), "n": _F("max_iteration", integer)},
         pairs=NEMO_PAIRS, anchored=True),
    Rule("validation", b"Validation: iteration",
         re.compile(rb"(?P<sanity>Sanity checking )?Validation: iteration (?P<k>\d+)/(?P<n>\d+)"),
         {"sanity": _F("sanity", present), "k": _F("k", integer), "n": _F("n", integer)}),
    Rule("stopped", b"Trainer.fit` stopped",
         re.compile(rb"`Trainer\.fit` stopped: `\w+=(?P<n>\d+)` reached"), {"n": _F("n", integer)}),
)

# --- NeMo AutoModel (text log) -----------------------------------------------------------------
_GIB_BYTES = scaled(GIB)
AUTOMODEL_PAIRS: dict[bytes, tuple[Col, ...]] = {
    b"loss": (_F("train_loss", num),),
    b"grad_norm": (_F("grad_norm", num),),
    b"lr": (_F("lr", num),),
    b"mem": (_F("max_memory_allocated", _GIB_BYTES, "B"),),
    b"mem:": (_F("max_memory_allocated", _GIB_BYTES, "B"),),
    b"tps": (_F("tokens_per_s", lead_num, "tokens/s"), _F("tokens_per_s_per_gpu", paren_num, "tokens/s")),
    b"num_label_tokens": (_F("num_label_tokens", num),),
}
AUTOMODEL_RULES: tuple[Rule, ...] = (
    Rule("max_steps", b"Max train steps:", re.compile(rb"Max train steps: (?P<n>\d+)"), {"n": _F("n", integer)}),
    Rule("step", b"| epoch ",
         re.compile(rb"(?:" + _TS + rb"[^\r\n]*?)?\bstep (?P<step>\d+) \| epoch (?P<epoch>\d+)"),
         {"ts": _F("timestamp_s", timestamp, "s"), "step": _F("global_step", integer),
          "epoch": _F("epoch", integer)},
         pairs=AUTOMODEL_PAIRS, exclude=b"[val]", kv_sep=b" "),
    Rule("val", b"[val]",
         re.compile(rb"\[val\][^\r\n]*?\bstep (?P<step>\d+)[^\r\n]*?\| loss (?P<loss>[^\s|]+)"),
         {"step": _F("step", integer), "loss": _F("loss", num)}),
)

# --- Megatron-LM -------------------------------------------------------------------------------
MEGATRON_PAIRS: dict[bytes, tuple[Col, ...]] = {
    b"consumed samples": (_F("consumed_samples", num),),
    b"elapsed time per iteration (ms)": (_F("step_time_s", scaled(1e-3), "s"),),
    b"learning rate": (_F("lr", num),),
    b"global batch size": (_F("global_batch_size", num),),
    b"elapsed time per iteration (s)": (_F("step_time_s", num, "s"),),
    b"lm loss": (_F("train_loss", num),),
    b"lm-loss": (_F("train_loss", num),),
    b"grad norm": (_F("grad_norm", num),),
    b"throughput per GPU (TFLOP/s/GPU)": (_F("tflops_per_gpu", num, "TFLOP/s"),),
}
_MIB_BYTES = scaled(MIB)
MEGATRON_MEMORY_PAIRS: dict[bytes, tuple[Col, ...]] = {
    b"allocated": (_F("allocated", _MIB_BYTES, "B"),),
    b"max allocated": (_F("max_allocated", _MIB_BYTES, "B"),),
    b"reserved": (_F("reserved", _MIB_BYTES, "B"),),
    b"max reserved": (_F("max_reserved", _MIB_BYTES, "B"),),
}
_GB_BYTES = scaled(1e9)
BRIDGE_MEMORY_PAIRS: dict[bytes, tuple[Col, ...]] = {
    b"mem-allocated-gigabytes": (_F("allocated", _GB_BYTES, "B"),),
    b"mem-max-allocated-gigabytes": (_F("max_allocated", _GB_BYTES, "B"),),
    b"mem-reserved-gigabytes": (_F("reserved", _GB_BYTES, "B"),),
    b"mem-max-reserved-gigabytes": (_F("max_reserved", _GB_BYTES, "B"),),
}
MEGATRON_RULES: tuple[Rule, ...] = (
    Rule("step", b"consumed samples:",
         re.compile(rb"(?:\[" + _TS + rb"\][^\r\n]*?)?iteration\s+(?P<it>\d+)\s*/\s*(?P<n>\d+)\s*(?=\|)"),
         {"ts": _F("timestamp_s", timestamp, "s"), "it": _F("iteration", integer),
          "n": _F("max_iteration", integer)},
         pairs=MEGATRON_PAIRS),
    Rule("memory", b"memory (MB)", re.compile(rb"memory \(MB\)"), pairs=MEGATRON_MEMORY_PAIRS,
         anchored=True, repeat=True),
    Rule("memory", b"memory (GB)", re.compile(rb"memory \(GB\)"), pairs=BRIDGE_MEMORY_PAIRS,
         anchored=True, repeat=True),
    Rule("val", b"validation loss at ",
         re.compile(rb"validation loss at (?:iteration (?P<step>\d+)|the end of training for (?P<split>val|test) "
                    rb"data)[^\r\n]*?\| lm loss value: (?P<loss>[^\s|]+)"),
         {"step": _F("step", integer), "split": _F("split", text), "loss": _F("loss", num)}),
    Rule("end_marker", b"[after training is done]", re.compile(rb"\[after training is done\]")),
    Rule("early_exit", b"exiting program ", re.compile(rb"exiting program (?:after|at) ")),
)

# --- NeMo 1 (Lightning tqdm progress bar) -------------------------------------------------------
NEMO1_PAIRS: dict[bytes, tuple[Col, ...]] = {
    b"reduced_train_loss": (_F("train_loss", lead_num),),
    b"global_step": (_F("global_step", lead_int),),
    b"consumed_samples": (_F("consumed_samples", lead_num),),
    b"train_step_timing in s": (_F("step_time_s", lead_num, "s"),),
    b"val_loss": (_F("val_loss", lead_num),),
    b"lr": (_F("lr", lead_num),),
}
NEMO1_RULES: tuple[Rule, ...] = (
    Rule("step", b"global_step=",
         re.compile(rb"Epoch (?P<epoch>\d+):[^\r\n]*?\|\s*(?P<it>\d+)/(?P<n>\d+) \[[^,\]\r\n]*,"),
         {"epoch": _F("epoch", integer), "it": _F("iteration", integer), "n": _F("max_iteration", integer)},
         pairs=NEMO1_PAIRS, kv_sep=b"=", item_sep=b","),
)

# --- restart markers (every format) -----------------------------------------------------------
RESTART_RULES: tuple[Rule, ...] = (
    Rule("restart", b"will restart worker group", re.compile(rb"[^\r\n]*will restart worker group")),
    Rule("restart", b"restart_count=", re.compile(rb"restart_count=(?P<n>[1-9]\d*)"), {"n": _F("n", integer)}),
)

# --- job footer (every format) -----------------------------------------------------------------
FOOTER_RULES: tuple[Rule, ...] = (
    Rule("start", b"Start time", re.compile(rb"Start time\s*:\s*" + _TS), {"ts": _F("start_s", timestamp, "s")},
         region="head"),
    Rule("end", b"End time", re.compile(rb"End time\s*:\s*" + _TS), {"ts": _F("end_s", timestamp, "s")},
         region="tail"),
    Rule("total", b"Total time", re.compile(rb"Total time\s*:\s*(?P<t>\d+:\d\d:\d\d)"),
         {"t": _F("total_s", hms, "s")}, region="tail"),
)


@dataclass(frozen=True)
class LogFormat:
    """A format: its rule table and how its step counter maps to ``max_steps``.

    Attributes:
        first_step: number of the first step (NeMo ``global_step`` 0, Megatron ``iteration`` 1).
        denominator_offset: ``max_steps`` = printed ``/N`` + this (NeMo prints ``max_steps - 1``).
    """

    name: str
    rules: tuple[Rule, ...]
    first_step: int = 0
    denominator_offset: int = 1

    @property
    def step_rule(self) -> Rule:
        """Return the rule of this format's training-step lines."""
        return next(r for r in self.rules if r.name == "step")


_COMMON = RESTART_RULES + FOOTER_RULES
FORMATS: dict[str, LogFormat] = {
    "nemo": LogFormat("nemo", NEMO_RULES + _COMMON),
    "megatron": LogFormat("megatron", MEGATRON_RULES + _COMMON, first_step=1, denominator_offset=0),
    "automodel": LogFormat("automodel", AUTOMODEL_RULES + _COMMON),
    "nemo1": LogFormat("nemo1", NEMO1_RULES + _COMMON, first_step=1, denominator_offset=0),
}
