"""Per-GPU training memory, term by term, for one parallel configuration. Pure.

Every term is derived from shared/reference/memory-measurements.md ("MM" below; §1 row N, §2, §3 item N).
The prediction names what it predicts: ``max_allocated`` (``torch.cuda.max_memory_allocated``, what
Megatron's ``max allocated``, NeMo's ``max_memory_allocated`` and AutoModel's ``mem`` report),
``reserved`` (``max_memory_reserved``: allocated plus the caching allocator's slack) or ``nvidia_smi``
(reserved plus the CUDA context and NCCL buffers: what the workshop samples on GPU 0).

Terms (bytes per GPU):
* weights: 2 B (bf16) per parameter held by the rank (MM §3.2: 2 + 4 + 12 B/param reproduce the
  measured static memory of row 3 to <1 %). Dense layer parameters are split by TP, expert
  parameters by EP x ETP, layers by PP (embedding on the first stage, output layer on the last).
* gradients: 4 B per trainable parameter (fp32 main-grad buffer: ``grad_reduce_in_fp32=True``,
  MM §2 precision; MCore builds grad buffers only for ``requires_grad`` parameters, MM §2 "grad buffers").
* optimizer: 12 B per trainable parameter (fp32 master + Adam m and v), divided by DP only with the
  distributed optimizer (MM §3.2; the NeMo LoRA branch turns it off, MM §2).
* activations (no recomputation, flash attention, bf16): per token and layer the tensors saved for
  backward. Replicated across TP without sequence parallelism: both LayerNorm inputs and outputs
  (8h bytes) and, with dropout, two 1-byte masks (2h); split by TP: Q (2h), K and V (4·kv), the
  attention output (2h), fc1's output (2·fc1 width) and fc2's input (2·ffn), times top-k for MoE
  experts plus their permuted input (2h·top-k). This is Korthikanti et al.'s s·b·h·(10 + 24/t)
  with flash attention for a GELU 4h MLP and full heads (MM §3.3: +3 % on row 3), written per
  tensor so that GQA and SwiGLU widths count. Sequence parallelism splits the replicated part by
  TP too; CP splits everything. In-flight micro-batches follow the 1F1B schedule (interleaved:
  MCore's warm-up count) on the rank asked for (Megatron's goldens come from the last rank, MM §1).
* logits (last stage only): 6 B per token and vocabulary entry / TP (bf16 logits + fp32 copy for
  the loss, MM §3.10); 4 B with a fused cross entropy (no fp32 copy; inference).
* allocator slack (``reserved``): 15 % of activations (MM §3.8: reserved exceeds max allocated by
  +1.9 % to +11.6 %, "scale the slack with activations, not with weights"; rows 2 and 9 give
  0.12 and 0.22 of their activations).
* CUDA context + NCCL (``nvidia_smi``): 3.5 GiB, the middle of MM §3.7's measured 3.0 GiB (row 9)
  and 3.9 GiB (row 2, ranks 1-7).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

GIB = 1024**3
ALLOCATOR_SLACK = 0.15
CONTEXT_GIB = 3.5
TARGETS = ("max_allocated", "reserved", "nvidia_smi")


@dataclass(frozen=True)
class Arch:
    """A decoder-only transformer: widths, heads, vocabulary, MoE experts."""

    layers: int
    hidden: int
    ffn: int
    heads: int
    kv_heads: int
    vocab: int
    gated: bool = True  # SwiGLU (fc1 is 2·ffn wide) or GELU (ffn)
    tied: bool = False
    experts: int = 0
    topk: int = 0

    @property
    def kv(self) -> int:
        """Return the key/value width (grouped-query attention)."""
        return self.hidden * self.kv_heads // self.heads

    @property
    def fc1(self) -> int:
        """Return fc1's output width."""
        return 2 * self.ffn if self.gated else self.ffn

    def layer_params(self) -> tuple[float, float]:
        """Return (dense, expert) parameters of one layer."""
        h = self.hidden
        attn = h * (h + 2 * self.kv) + h * h
        mlp = h * self.fc1 + self.ffn * h
        if self.experts:
            return attn + 2 * h + h * self.experts, float(self.experts * mlp)
        return attn + 2 * h + mlp, 0.0


@dataclass(frozen=True)
class Setup:
    """One measured or planned configuration (per-GPU view)."""

    arch: Arch
    seq: int  # tokens per micro-batch (padded)
    mbs: int = 1
    tp: int = 1
    pp: int = 1
    vpp: int = 1
    cp: int = 1
    ep: int = 1
    etp: int | None = None  # expert TP (default: TP)
    dp: int = 1
    sp: bool = False
    micro_batches: int = 1  # per DP rank and step (gbs / (mbs·dp))
    trainable: float | None = None  # None: every parameter (pretrain / full fine-tune)
    distributed_optimizer: bool = False
    dropout: bool = False
    fused_ce: bool = False
    rank: str = "last"  # which pipeline stage ("first" or "last") is asked about


@dataclass(frozen=True)
class Terms:
    """The predicted terms in bytes (per GPU)."""

    weights: float
    grads: float
    optimizer: float
    activations: float
    logits: float

    @property
    def static(self) -> float:
        """Return weights + grads + optimizer (what ``allocated`` shows between steps)."""
        return self.weights + self.grads + self.optimizer

    @property
    def max_allocated(self) -> float:
        """Return the predicted ``max_memory_allocated``."""
        return self.static + self.activations + self.logits

    def target(self, name: str) -> float:
        """Return the prediction of ``name`` (one of :data:`TARGETS`) in bytes."""
        if name not in TARGETS:
            raise ValueError(f"unknown memory target {name!r}; use one of {TARGETS}")
        out = self.max_allocated
        if name != "max_allocated":
            out += ALLOCATOR_SLACK * (self.activations + self.logits)
        return out + (CONTEXT_GIB * GIB if name == "nvidia_smi" else 0.0)


def held_params(s: Setup) -> tuple[float, float]:
    """Return (all, trainable) parameters held by one GPU of the asked pipeline stage."""
    a = s.arch
    dense, expert = a.layer_params()
    etp = s.etp or s.tp
    layers = a.layers / s.pp
    held = layers * (dense / s.tp + expert / (s.ep * etp))
    first, last = s.rank == "first" or s.pp == 1, s.rank == "last" or s.pp == 1
    embed = a.vocab * a.hidden / s.tp
    held += (embed if first else 0) + (embed if last and not (a.tied and first) else 0) + (a.hidden if last else 0)
    trainable = held if s.trainable is None else s.trainable / (s.tp * s.pp)
    return held, trainable


def in_flight(s: Setup) -> float:
    """Return how many layers' activations (of one micro-batch each) the asked stage holds at its peak."""
    per_stage = s.arch.layers / s.pp
    if s.pp == 1:
        return float(s.arch.layers)
    r = 0 if s.rank == "first" else s.pp - 1
    total = s.micro_batches * s.vpp
    if s.vpp > 1:  # MCore interleaved 1F1B: warm-up chunks + the one in flight, each L/(pp·vpp) layers
        chunks = min(total, (s.pp - r - 1) * 2 + (s.vpp - 1) * s.pp + 1)
        return chunks * per_stage / s.vpp
    return min(s.micro_batches, s.pp - r) * per_stage


def activation_bytes(s: Setup) -> float:
    """Return the saved activations of one layer for one micro-batch (bytes), then times in-flight layers."""
    a, h, t = s.arch, s.arch.hidden, s.tp
    replicated = 8.0 * h + (2.0 * h if s.dropout else 0.0)
    attn = 2.0 * h + 4.0 * a.kv + 2.0 * h
    mlp = 2.0 * a.fc1 + 2.0 * a.ffn
    if a.experts:
        mlp = a.topk * (mlp + 2.0 * h)
    per_token = (replicated / t if s.sp else replicated) + (attn + mlp) / t
    return per_token * s.seq * s.mbs / s.cp * in_flight(s)


def logits_bytes(s: Setup) -> float:
    """Return the logits' bytes on the last stage (0 elsewhere)."""
    if s.pp > 1 and s.rank != "last":
        return 0.0
    return (4.0 if s.fused_ce else 6.0) * s.seq * s.mbs * s.arch.vocab / s.tp / s.cp


def terms(s: Setup) -> Terms:
    """Return the predicted terms of ``s``."""
    held, trainable = held_params(s)
    opt_shards = s.dp if s.distributed_optimizer else 1
    return Terms(weights=2.0 * held, grads=4.0 * trainable, optimizer=12.0 * trainable / opt_shards,
                 activations=activation_bytes(s), logits=logits_bytes(s))


def with_seq(s: Setup, seq: int) -> Setup:
    """Return ``s`` with another padded sequence length."""
    return replace(s, seq=seq)
