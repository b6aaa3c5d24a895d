"""The words of the injected faults (TEST TOOLING, see ``faults.py``): copied from the real failures.

Sources: PyTorch's CUDA caching allocator OOM message (torch 2.x), ProcessGroupNCCL's watchdog
lines as in shared/real-logs/19 (``[rankN]:[E<mmdd> <time> ProcessGroupNCCL.cpp:<line>]``), the
torch abort that follows (shared/reference/nemo.md §9), Lightning's SLURM ``--ntasks`` error (the
workshop's own configuration error, tests/fixtures/logs/unexpected_error.log), and benign noise
from shared/real-logs 02 and 27 and the harmless lookalikes listed in nemo.md §9.
"""

from __future__ import annotations

from datetime import datetime

CONFIG_ERROR = ("You set `--ntasks=2` in your SLURM bash script, but this variable is not supported. "
                "HINT: Use `--ntasks-per-node=2` instead.")


def oom_message(local_rank: int) -> str:
    """Return PyTorch's CUDA out-of-memory message for GPU ``local_rank``."""
    return (f"CUDA out of memory. Tried to allocate 2.00 GiB. GPU {local_rank} has a total capacity of 79.15 GiB "
            "of which 1.06 GiB is free. Including non-PyTorch memory, this process has 78.08 GiB memory in use. "
            "Of the allocated memory 76.24 GiB is allocated by PyTorch, and 1.21 GiB is reserved by PyTorch but "
            "unallocated. If reserved but unallocated memory is large try setting "
            "PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True to avoid fragmentation.  See documentation for "
            "Memory Management  (https://pytorch.org/docs/stable/notes/cuda.html#environment-variables)")


def _c10(rank: int, now: datetime, where: str, level: str = "E") -> str:
    return f"[rank{rank}]:[{level}{now:%m%d %H:%M:%S.%f}000 {where}]"


def nccl_watchdog(rank: int, now: datetime, seq: int = 5) -> list[str]:
    """Return the lines a rank prints when the NCCL watchdog times out a collective, up to the abort."""
    pg = f"[PG ID 0 PG GUID 0(default_pg) Rank {rank}]"
    work = (f"Watchdog caught collective operation timeout: WorkNCCL(SeqNum={seq}, OpType=ALLREDUCE, NumelIn=1, "
            "NumelOut=1, Timeout(ms)=600000) ran for 600001 milliseconds before timing out.")
    return [
        f"{_c10(rank, now, 'ProcessGroupNCCL.cpp:655')} [Rank {rank}] {work}",
        f"{_c10(rank, now, 'ProcessGroupNCCL.cpp:2299')} {pg}  failure detected by watchdog at work sequence id: "
        f"{seq} PG status: last enqueued work: {seq}, last completed work: {seq - 1}",
        f"{_c10(rank, now, 'ProcessGroupNCCL.cpp:693')} Stack trace of the failed collective not found, potentially "
        "because FlightRecorder is disabled. You can enable it by setting TORCH_NCCL_TRACE_BUFFER_SIZE to a non-zero "
        "value.",
        f"{_c10(rank, now, 'ProcessGroupNCCL.cpp:2147')} {pg} First PG on this rank to signal dumping.",
        f"{_c10(rank, now, 'ProcessGroupNCCL.cpp:1895')} {pg} Some NCCL operations have failed or timed out. Due to "
        "the asynchronous nature of CUDA kernels, subsequent GPU operations might run on corrupted/incomplete data.",
        f"{_c10(rank, now, 'ProcessGroupNCCL.cpp:1901')} {pg} To avoid data inconsistency, we are taking the entire "
        "process down.",
        "terminate called after throwing an instance of 'c10::DistBackendError'",
        f"  what():  {pg} Process group watchdog thread terminated with exception: [Rank {rank}] {work}",
    ]


def launch_noise() -> list[str]:
    """Return the benign warnings a healthy NeMo container prints at start-up (shared/real-logs 02)."""
    now = datetime.now()
    return [
        "[WARNING  | bitsandbytes.cextension]: The installed version of bitsandbytes was compiled without GPU "
        "support. 8-bit optimizers, 8-bit multiplication, and GPU quantization are unavailable.",
        f"[NeMo W {now:%Y-%m-%d %H:%M:%S} nemo_logging:405] There were no checkpoints found in checkpoint_dir or "
        "no checkpoint folder at checkpoint_dir :checkpoints. Training from scratch.",
        "[WARNING  | py.warnings        ]: /usr/local/lib/python3.12/dist-packages/mamba_ssm/ops/"
        "selective_scan_interface.py:163: FutureWarning: `torch.cuda.amp.custom_fwd(args...)` is deprecated. "
        "Please use `torch.amp.custom_fwd(args..., device_type='cuda')` instead.",
    ]


def step_noise(rank: int, now: datetime) -> list[str]:
    """Return benign mid-run lines: a torch warning naming NCCL and a barrier (no failure in them)."""
    return [
        f"{_c10(rank, now, 'ProcessGroupNCCL.cpp:4115', 'W')} [PG ID 0 PG GUID 0 Rank {rank}]  using GPU {rank} "
        "to perform barrier as devices used by this process are currently unknown. This can potentially cause a "
        "hang if this rank to GPU mapping is incorrect.",
    ]


def end_noise(rank: int) -> list[str]:
    """Return the teardown warning PyTorch prints when a process group was not destroyed explicitly."""
    now = datetime.now()
    return [
        f"{_c10(rank, now, 'ProcessGroupNCCL.cpp:1250', 'W')} Warning: WARNING: destroy_process_group() was not "
        "called before program exit, which can leak resources. For more info, please see "
        "https://pytorch.org/docs/stable/distributed.html#shutdown (function operator())",
    ]
