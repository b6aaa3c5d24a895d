"""Per-rank host-memory sampler written like the workshop's ``nvidia-smi --format=csv,nounits`` monitor.

File ``$SCALING_MEMORY_DIR/memory_rank<r>.csv`` (default ``<log_dir>/memory/``), one row per sample::

    timestamp, index, name, memory.used [MiB], memory.total [MiB]
    2026/11/22 20:40:01.123, 0, cpu-rss (tiny workload), 512, 23958

``index`` is the global rank, ``memory.used`` this process's RSS, ``memory.total`` the host RAM.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import TextIO

import psutil

CSV_HEADER = "timestamp, index, name, memory.used [MiB], memory.total [MiB]"
DEVICE_NAME = "cpu-rss (tiny workload)"
DEFAULT_INTERVAL_S = 0.5
MIB = 1024 * 1024


def format_memory_row(when: datetime, index: int, used_mib: int, total_mib: int) -> str:
    """Returns one CSV row in nvidia-smi ``csv,nounits`` style (comma + space separated).

    Args:
        when: Sample time.
        index: Global rank.
        used_mib: Process RSS in MiB.
        total_mib: Host RAM in MiB.
    """
    stamp = when.strftime("%Y/%m/%d %H:%M:%S.") + f"{when.microsecond // 1000:03d}"
    return f"{stamp}, {index}, {DEVICE_NAME}, {used_mib}, {total_mib}"


def memory_settings(log_dir: Path, env: Mapping[str, str]) -> tuple[Path, float]:
    """Returns ``(directory, interval_s)`` from ``SCALING_MEMORY_DIR`` / ``SCALING_MEMORY_INTERVAL_S``.

    Args:
        log_dir: The run's log directory (default parent ``<log_dir>/memory``).
        env: Environment mapping.

    Raises:
        ValueError: A non-positive or non-numeric interval.
    """
    directory = Path(env["SCALING_MEMORY_DIR"]) if env.get("SCALING_MEMORY_DIR") else log_dir / "memory"
    raw = env.get("SCALING_MEMORY_INTERVAL_S") or str(DEFAULT_INTERVAL_S)
    interval = float(raw)
    if not interval > 0:
        raise ValueError(f"SCALING_MEMORY_INTERVAL_S must be > 0, got {raw!r}")
    return directory, interval


class MemorySampler:
    """Daemon thread appending this process's RSS to ``memory_rank<r>.csv``, plus start and end samples."""

    def __init__(self, directory: Path, rank: int, interval_s: float) -> None:
        """Returns None; prepares the sampler (call :meth:`start`).

        Args:
            directory: Output directory (created).
            rank: Global rank (file name and ``index`` column).
            interval_s: Seconds between samples.
        """
        self.path = Path(directory) / f"memory_rank{rank}.csv"
        self.rank = rank
        self.interval_s = interval_s
        self._proc = psutil.Process(os.getpid())
        self._total_mib = psutil.virtual_memory().total // MIB
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name=f"tiny-memory-rank{rank}", daemon=True)
        self._handle: TextIO | None = None

    def sample(self) -> None:
        """Returns None after writing one row (thread-safe, flushed)."""
        used = self._proc.memory_info().rss // MIB
        row = format_memory_row(datetime.now(), self.rank, used, self._total_mib)
        with self._lock:
            if self._handle is not None:
                self._handle.write(row + "\n")
                self._handle.flush()

    def start(self) -> MemorySampler:
        """Returns self after writing the header and the start sample and starting the thread."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = self.path.open("w", encoding="utf-8")
        self._handle.write(CSV_HEADER + "\n")
        self.sample()
        self._thread.start()
        return self

    def _loop(self) -> None:
        """Returns None when stopped; samples every ``interval_s`` seconds."""
        while not self._stop.wait(self.interval_s):
            self.sample()

    def stop(self) -> None:
        """Returns None after the end sample; the file is closed (idempotent)."""
        if self._handle is None:
            return
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self.sample()
        with self._lock:
            if self._handle is not None:
                self._handle.close()
            self._handle = None
