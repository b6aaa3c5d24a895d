"""Data-parallel plumbing of the tiny engine: rank discovery (torch env, then SLURM), gloo, gradient all-reduce."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

DEFAULT_MASTER_ADDR = "127.0.0.1"
DEFAULT_MASTER_PORT = 29500
PROCESS_GROUP_TIMEOUT_S = 300
LOOPBACK = ("127.0.0.1", "localhost")


@dataclass(frozen=True)
class DistEnv:
    """Where this process sits in the job.

    Attributes:
        rank: Global rank.
        world_size: Number of processes.
        local_rank: Rank on this node.
        master_addr: Rendezvous host.
        master_port: Rendezvous port.
        source: ``torch``, ``slurm`` or ``single``.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    master_addr: str = DEFAULT_MASTER_ADDR
    master_port: int = DEFAULT_MASTER_PORT
    source: str = "single"


def resolve_dist_env(env: Mapping[str, str]) -> DistEnv:
    """Returns the rank layout from ``RANK``/``WORLD_SIZE`` (torch), else ``SLURM_PROCID``/``SLURM_NTASKS``.

    Torch convention wins when both ``RANK`` and ``WORLD_SIZE`` are set (our local launcher). Under SLURM,
    ``MASTER_ADDR`` defaults to 127.0.0.1 and ``MASTER_PORT`` to ``20000 + SLURM_JOB_ID % 20000``.

    Args:
        env: Environment mapping (``os.environ``).

    Raises:
        ValueError: Non-integer values or a rank outside ``[0, world_size)``.
    """
    addr = env.get("MASTER_ADDR") or DEFAULT_MASTER_ADDR
    if env.get("RANK") is not None and env.get("WORLD_SIZE") is not None:
        rank, world = _int(env, "RANK"), _int(env, "WORLD_SIZE")
        local = _int(env, "LOCAL_RANK") if env.get("LOCAL_RANK") else rank
        port = _int(env, "MASTER_PORT") if env.get("MASTER_PORT") else DEFAULT_MASTER_PORT
        out = DistEnv(rank, world, local, addr, port, "torch")
    elif env.get("SLURM_PROCID") is not None and env.get("SLURM_NTASKS") is not None:
        rank, world = _int(env, "SLURM_PROCID"), _int(env, "SLURM_NTASKS")
        local = _int(env, "SLURM_LOCALID") if env.get("SLURM_LOCALID") else rank
        if env.get("MASTER_PORT"):
            port = _int(env, "MASTER_PORT")
        elif env.get("SLURM_JOB_ID"):
            port = 20000 + _int(env, "SLURM_JOB_ID") % 20000
        else:
            port = DEFAULT_MASTER_PORT
        out = DistEnv(rank, world, local, addr, port, "slurm")
    else:
        return DistEnv()
    if out.world_size < 1 or not 0 <= out.rank < out.world_size:
        raise ValueError(f"rank {out.rank} is outside world size {out.world_size}")
    return out


def _int(env: Mapping[str, str], key: str) -> int:
    """Returns ``int(env[key])`` or raises ValueError naming the variable."""
    try:
        return int(env[key])
    except ValueError:
        raise ValueError(f"environment variable {key}={env[key]!r} is not an integer") from None


def init_process_group(dist_env: DistEnv) -> None:
    """Returns None after joining the gloo process group (no-op for a single process).

    Args:
        dist_env: Result of :func:`resolve_dist_env`.
    """
    if dist_env.world_size == 1:
        return
    import torch.distributed as dist

    if dist_env.master_addr in LOOPBACK and sys.platform.startswith("linux"):
        os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")  # all ranks on this host: keep gloo off other NICs
    dist.init_process_group(
        backend="gloo",
        init_method=f"tcp://{dist_env.master_addr}:{dist_env.master_port}",
        rank=dist_env.rank,
        world_size=dist_env.world_size,
        timeout=timedelta(seconds=PROCESS_GROUP_TIMEOUT_S),
    )


def destroy_process_group() -> None:
    """Returns None after leaving the process group, if one was joined."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def is_distributed() -> bool:
    """Returns True when a process group with more than one member is active."""
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def barrier() -> None:
    """Returns None once every rank reached this point (no-op for a single process)."""
    import torch.distributed as dist

    if is_distributed():
        dist.barrier()


def all_reduce_sum(values: list[float]) -> list[float]:
    """Returns the element-wise sum of ``values`` over all ranks (float64; unchanged for a single process).

    Args:
        values: Per-rank numbers, same length on every rank.
    """
    if not is_distributed():
        return list(values)
    import torch
    import torch.distributed as dist

    buf = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(buf, op=dist.ReduceOp.SUM)
    return buf.tolist()


def all_reduce_max(value: float) -> float:
    """Returns the largest ``value`` over all ranks (unchanged for a single process).

    Args:
        value: This rank's number.
    """
    if not is_distributed():
        return value
    import torch
    import torch.distributed as dist

    buf = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(buf, op=dist.ReduceOp.MAX)
    return float(buf[0])


def average_gradients(params: Iterable[Any]) -> None:
    """Returns None after replacing each gradient with its mean over ranks (one flat all-reduce).

    Args:
        params: Parameters with ``.grad`` (trainable parameters, same order on every rank).
    """
    if not is_distributed():
        return
    import torch
    import torch.distributed as dist

    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= dist.get_world_size()
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def broadcast_parameters(params: Iterable[Any]) -> None:
    """Returns None after copying rank 0's parameter values to every rank (identical start).

    Args:
        params: Parameters, same order on every rank.
    """
    if not is_distributed():
        return
    import torch.distributed as dist

    for p in params:
        dist.broadcast(p.data, src=0)


def broadcast_text(text: str) -> str:
    """Returns rank 0's ``text`` on every rank (e.g. the log-dir timestamp).

    Args:
        text: Value on rank 0 (ignored elsewhere).
    """
    if not is_distributed():
        return text
    import torch.distributed as dist

    box = [text]
    dist.broadcast_object_list(box, src=0)
    return str(box[0])
