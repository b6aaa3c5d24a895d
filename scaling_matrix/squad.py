"""SQuAD token lengths: how long the longest micro-batch a rank sees is, for the memory predictor. Pure.

Why it matters: NeMo's ``SquadDataModule`` does not pack and pads each micro-batch only to its own
longest sample, rounded up to a multiple of 16 and capped at ``seq_length`` (``pad_to_max_length=False``,
``pad_seq_length_to_mult=16``; shared/reference/memory-measurements.md §2). Activation memory peaks at
the longest micro-batch of the run, so the predictor sizes activations for the expected **maximum**
over the samples one rank sees, not for 2048 tokens.

Which percentile: the expected maximum of ``n`` samples is close to the ``1 - 1/(n + 1)`` quantile.
A workshop cell (250 steps x global batch 8, micro batch 1) shows each rank ``2000 / DP`` samples:
p99.95 on one GPU, p99.6 on eight.

The distribution (the facts sheet has none; derived, stated here, replaceable by a measurement):
sample length = template + answer (13 tokens: ``Context: ... Question: ... Answer:`` plus a short
answer) + context and question, log-normal with median 175 tokens and sigma 0.40. Anchors: (a) of
SQuAD v1.1's 87,599 training examples, 87,285 tokenize to at most 512 tokens with BERT, RoBERTa, OPT and
T5 tokenizers (the varun-v-rao/squad dataset card: 314 longer, P(> 512) = 0.36 %, z = 2.69); (b) the
train split is 79.06 MB for 87,285 examples (same card), about 830 characters of context, question
and answer each, ~190 BPE tokens at ~4.4 characters per token, which a log-normal with P(> 512) =
0.36 % reaches with median 175 and sigma 0.40 (mean 189). Llama 3's 128k-entry BPE vocabulary is at
least as compact as those tokenizers, so this errs long (inference). :func:`lengths_from_jsonl`
measures the real distribution from NeMo's cached ``squad/training.jsonl`` when a node has it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from pathlib import Path
from statistics import NormalDist

TEMPLATE_TOKENS = 13
MEDIAN_TOKENS = 175.0
SIGMA = 0.40
PAD_MULTIPLE = 16


def peak_quantile(samples: int) -> float:
    """Return the quantile whose value the maximum of ``samples`` draws is expected to reach."""
    return 1.0 - 1.0 / (max(samples, 1) + 1)


def estimated_length(quantile: float) -> float:
    """Return the estimated SQuAD sample length (tokens) at ``quantile`` (the module's log-normal)."""
    z = NormalDist().inv_cdf(min(max(quantile, 1e-9), 1 - 1e-12))
    return TEMPLATE_TOKENS + MEDIAN_TOKENS * math.exp(SIGMA * z)


def padded(tokens: float, cap: int) -> int:
    """Return ``tokens`` rounded up to a multiple of 16 and capped at ``cap`` (NeMo's padding rule)."""
    return min(cap, PAD_MULTIPLE * math.ceil(tokens / PAD_MULTIPLE))


def peak_micro_batch_tokens(samples_per_rank: int, cap: int, micro_batch: int = 1,
                            lengths: list[int] | None = None) -> tuple[int, float]:
    """Return (padded length of the longest micro-batch a rank sees, the quantile used).

    ``lengths``: a measured, sorted length distribution (:func:`lengths_from_jsonl`); else the estimate.
    A micro-batch of ``micro_batch`` samples is padded to its longest, so the rank sees
    ``samples_per_rank`` draws either way.
    """
    q = peak_quantile(samples_per_rank)
    if lengths:
        tokens = float(lengths[min(len(lengths) - 1, int(q * len(lengths)))])
    else:
        tokens = estimated_length(q)
    return padded(tokens, cap), q


def lengths_from_jsonl(path: str | Path, count_tokens: Callable[[str], int]) -> list[int]:
    """Return the sorted token lengths of NeMo's SQuAD JSONL (``{"input": ..., "output": ...}`` rows)."""
    out = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                row = json.loads(line)
                out.append(count_tokens(f"{row.get('input', '')} {row.get('output', '')}"))
    return sorted(out)


def quantiles(lengths: Iterable[int], qs: Iterable[float] = (0.5, 0.9, 0.99, 0.999)) -> dict[float, int]:
    """Return the ``qs`` quantiles of measured ``lengths`` (sorted here)."""
    xs = sorted(lengths)
    return {q: xs[min(len(xs) - 1, int(q * len(xs)))] for q in qs} if xs else {}
