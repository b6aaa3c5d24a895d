"""Local launcher: runs a cell's N ranks as local processes (the embedded default's "cluster").

Each rank is its own process-group leader with stdout/stderr appended to per-cell files (never
an inherited pipe), so cancellation kills whole groups and an orchestrator crash leaves no
process holding a pipe open (reference/prefect.md §8). Ranks get torch's rendezvous variables
(RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT), as srun + the tiny engine expect.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from scaling_matrix.errors import LaunchError
from scaling_matrix.render.shell import shell_join

_STAMP = "%Y-%m-%d %H:%M:%S"
_BAR = "==============================="


class SlotPool:
    """Counts GPU slots (local: rank processes) in use; ``acquire(n)`` blocks until n are free."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._free = capacity
        self._cond = threading.Condition()

    def acquire(self, n: int, cancel: threading.Event | None = None) -> None:
        """Block until ``n`` slots are free and take them; a cell larger than capacity runs alone."""
        n = min(n, self.capacity)
        with self._cond:
            while self._free < n:
                if cancel is not None and cancel.is_set():
                    raise LaunchError("cancelled while waiting for free slots")
                self._cond.wait(timeout=0.5)
            self._free -= n

    def release(self, n: int) -> None:
        """Return ``n`` slots (capped like :meth:`acquire`)."""
        n = min(n, self.capacity)
        with self._cond:
            self._free = min(self.capacity, self._free + n)
            self._cond.notify_all()


@dataclass(frozen=True)
class LocalRun:
    """Outcome of one local launch."""

    returncode: int
    started_at: datetime
    finished_at: datetime
    wall_clock_s: float
    stdout_path: Path
    stderr_path: Path
    timed_out: bool = False
    cancelled: bool = False


def free_port() -> int:
    """Return a TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _kill_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def terminate_all(procs: list[subprocess.Popen[bytes]], grace_s: float = 5.0) -> None:
    """SIGTERM every process group, wait up to ``grace_s``, then SIGKILL the survivors."""
    for p in procs:
        if p.poll() is None:
            _kill_group(p, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for p in procs:
        try:
            p.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _kill_group(p, signal.SIGKILL)
            p.wait()


class LocalLauncher:
    """Starts and supervises the rank processes of one cell."""

    def __init__(self, poll_s: float = 0.2, failure_grace_s: float = 10.0) -> None:
        self.poll_s = poll_s
        self.failure_grace_s = failure_grace_s

    def run(self, argv: list[str], *, world: int, cell_dir: Path, env: Mapping[str, str] | None = None,
            timeout_s: float = 3600, cancel: threading.Event | None = None,
            ranks_per_node: int | None = None) -> LocalRun:
        """Run ``argv`` as ``world`` ranks in ``cell_dir`` and return when all have exited.

        ``ranks_per_node`` (default: all on one node) numbers the ranks as a multi-node job would:
        ``LOCAL_RANK = rank % ranks_per_node``, ``NODE_RANK = rank // ranks_per_node`` (every "node"
        is this machine: the documented stand-in for a 2-node cell without a cluster).
        """
        cell_dir.mkdir(parents=True, exist_ok=True)
        (cell_dir / "command.sh").write_text("#!/usr/bin/env bash\n" + shell_join(argv) + "\n")
        out_path, err_path = cell_dir / "stdout.log", cell_dir / "stderr.log"
        started = datetime.now().astimezone()
        with open(out_path, "a", buffering=1) as out:
            out.write(f"{_BAR}\n Job started\n Start time : {started.strftime(_STAMP)}\n{_BAR}\n")
        t0 = time.monotonic()
        procs = self._spawn(argv, world, ranks_per_node or world, cell_dir, env or {}, out_path, err_path)
        pidfile = write_pidfile(cell_dir, procs)
        try:
            rc, timed_out, cancelled = self._supervise(procs, t0 + timeout_s, cancel)
        finally:
            pidfile.unlink(missing_ok=True)
        wall = time.monotonic() - t0
        finished = datetime.now().astimezone()
        with open(out_path, "a") as out:
            s = int(wall)
            out.write(f"{_BAR}\n Job finished\n End time   : {finished.strftime(_STAMP)}\n"
                      f" Total time : {s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}\n{_BAR}\n")
        return LocalRun(rc, started, finished, wall, out_path, err_path, timed_out, cancelled)

    def _spawn(self, argv: list[str], world: int, per_node: int, cell_dir: Path, env: Mapping[str, str],
               out_path: Path, err_path: Path) -> list[subprocess.Popen[bytes]]:
        base = {**os.environ, **env, "WORLD_SIZE": str(world), "LOCAL_WORLD_SIZE": str(per_node),
                "MASTER_ADDR": "127.0.0.1",
                "MASTER_PORT": str(free_port()), "PYTHONUNBUFFERED": "1",
                "SCALING_MEMORY_DIR": str(cell_dir / "memory")}
        procs: list[subprocess.Popen[bytes]] = []
        try:
            for rank in range(world):
                rank_env = {**base, "RANK": str(rank), "LOCAL_RANK": str(rank % per_node),
                            "NODE_RANK": str(rank // per_node)}
                with open(out_path, "ab") as out, open(err_path, "ab") as err:
                    procs.append(subprocess.Popen(argv, cwd=cell_dir, env=rank_env, stdout=out,
                                                  stderr=err, stdin=subprocess.DEVNULL,
                                                  start_new_session=True))
        except OSError as exc:
            terminate_all(procs)
            with open(err_path, "a") as err:
                err.write(f"launch failed: {exc}\n")
            raise LaunchError(f"cannot start {argv[0]!r}: {exc}") from exc
        return procs

    def _supervise(self, procs: list[subprocess.Popen[bytes]], deadline: float,
                   cancel: threading.Event | None) -> tuple[int, bool, bool]:
        first_rc: int | None = None  # the first rank failure is the cause; later ones are our kills
        failed_at = 0.0
        try:
            while None in [p.poll() for p in procs]:  # poll every rank, no short-circuit
                now = time.monotonic()
                if cancel is not None and cancel.is_set():
                    terminate_all(procs)
                    return -signal.SIGTERM, False, True
                if now > deadline:
                    terminate_all(procs)
                    return 124, True, False
                if first_rc is None:
                    first_rc = next((p.returncode for p in procs if p.returncode not in (None, 0)), None)
                    failed_at = now
                if first_rc is not None and now - failed_at > self.failure_grace_s:
                    terminate_all(procs)  # a dead rank leaves the others hanging in collectives
                    break
                time.sleep(self.poll_s)
        finally:
            terminate_all([p for p in procs if p.poll() is None])
        if first_rc is not None:
            return first_rc, False, False
        return next((p.returncode for p in procs if p.returncode != 0), 0), False, False


def write_pidfile(cell_dir: Path, procs: list[subprocess.Popen[bytes]]) -> Path:
    """Record the process-group ids of a launch so another process can kill them."""
    path = cell_dir / "pids"
    path.write_text("".join(f"{p.pid}\n" for p in procs))
    return path


def kill_recorded_groups(run_directory: Path) -> int:
    """SIGKILL every process group recorded in ``pids`` files under ``run_directory``; return count."""
    killed = 0
    for pidfile in run_directory.glob("**/pids"):
        for line in pidfile.read_text().split():
            try:
                os.killpg(int(line), signal.SIGKILL)
                killed += 1
            except (ValueError, ProcessLookupError, PermissionError):
                continue
        pidfile.unlink(missing_ok=True)
    return killed
