"""NeMo AutoModel ``training.jsonl`` / ``validation.jsonl`` rows into records.

Each row is ``{"step": S, "epoch": E, "timestamp": "...Z", <metrics>}`` (AM ``MetricsSample.to_dict``);
training metrics are ``loss, grad_norm, lr, mem`` (GiB), ``tps, tps_per_gpu, mfu,
num_tokens_per_step, num_label_tokens``. A row with ``grad_norm`` or ``tps`` is a training step,
any other row with ``loss`` (or a ``val_loss``) is a validation result.
"""

from __future__ import annotations

import json
import math
from typing import Any

from scaling_matrix.parsing.model import ProgressRecord, ValRecord
from scaling_matrix.parsing.rules import GIB, timestamp

#: JSON key -> (record attribute, factor to the record's unit)
JSONL_FIELDS: dict[str, tuple[str, float]] = {
    "loss": ("train_loss", 1.0),
    "grad_norm": ("grad_norm", 1.0),
    "lr": ("lr", 1.0),
    "mem": ("max_memory_allocated", GIB),
    "tps": ("tokens_per_s", 1.0),
    "tps_per_gpu": ("tokens_per_s_per_gpu", 1.0),
    "num_tokens_per_step": ("num_tokens_per_step", 1.0),
    "num_label_tokens": ("num_label_tokens", 1.0),
    "global_batch_size": ("global_batch_size", 1.0),
}


def _finite(value: Any) -> float | None:
    """Return ``value`` as a finite float, else None (bools, strings and NaN are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    f = float(value)
    return f if math.isfinite(f) else None


def _int(value: Any) -> int | None:
    """Return ``value`` as a non-negative int when it is an integral number, else None."""
    f = _finite(value)
    return int(f) if f is not None and f.is_integer() and f >= 0 else None


def parse_jsonl_row(line: bytes, lineno: int) -> ProgressRecord | ValRecord | None:
    """Return the record of one JSONL row, or None when it is not an AutoModel metrics row."""
    try:
        row = json.loads(line)
    except (ValueError, RecursionError):
        return None
    if not isinstance(row, dict):
        return None
    step = _int(row.get("step"))
    if "val_loss" in row and _finite(row["val_loss"]) is not None:
        return ValRecord(step, float(row["val_loss"]), lineno)
    if step is None:
        return None
    if "grad_norm" not in row and "tps" not in row:
        loss = _finite(row.get("loss"))
        return ValRecord(step, loss, lineno) if loss is not None else None
    rec = ProgressRecord(epoch=_int(row.get("epoch")) or 0, iteration=step, max_iteration=None,
                         lineno=lineno, global_step=step)
    for key, (attr, factor) in JSONL_FIELDS.items():
        value = _finite(row.get(key))
        if value is not None:
            setattr(rec, attr, value * factor)
    ts = row.get("timestamp")
    if isinstance(ts, str):
        rec.timestamp_s = timestamp(ts.encode())
    return rec
