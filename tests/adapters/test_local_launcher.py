"""Local launcher with real processes: ranks, env, files, failure, timeout, cancel, hostile paths."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pytest

from scaling_matrix.adapters.local import LocalLauncher, SlotPool, kill_recorded_groups
from scaling_matrix.errors import LaunchError

PY = sys.executable


def _py(code: str) -> list[str]:
    return [PY, "-c", code]


def test_ranks_get_rendezvous_env_and_share_log(tmp_path: Path) -> None:
    code = "import os; print('rank', os.environ['RANK'], 'of', os.environ['WORLD_SIZE'], os.environ['MASTER_PORT'])"
    run = LocalLauncher().run(_py(code), world=3, cell_dir=tmp_path / "c")
    assert run.returncode == 0 and not run.timed_out
    out = run.stdout_path.read_text()
    assert {f"rank {r} of 3" in out for r in range(3)} == {True}
    assert "Job started" in out and "Total time : 00:00:0" in out
    assert (tmp_path / "c" / "command.sh").read_text().startswith("#!/usr/bin/env bash")
    assert not (tmp_path / "c" / "pids").exists()


def test_failing_rank_stops_the_others(tmp_path: Path) -> None:
    code = "import os,sys,time\nif os.environ['RANK']=='1': sys.exit(3)\ntime.sleep(60)"
    t0 = time.monotonic()
    run = LocalLauncher(failure_grace_s=0.5).run(_py(code), world=2, cell_dir=tmp_path / "c")
    assert run.returncode == 3 and time.monotonic() - t0 < 20


def test_timeout_and_cancel(tmp_path: Path) -> None:
    run = LocalLauncher().run(_py("import time; time.sleep(60)"), world=1, cell_dir=tmp_path / "t",
                              timeout_s=1)
    assert run.timed_out and run.returncode == 124
    cancel = threading.Event()
    threading.Timer(0.5, cancel.set).start()
    run = LocalLauncher().run(_py("import time; time.sleep(60)"), world=2, cell_dir=tmp_path / "x",
                              cancel=cancel)
    assert run.cancelled and run.wall_clock_s < 15


def test_missing_executable_is_a_launch_error(tmp_path: Path) -> None:
    with pytest.raises(LaunchError, match="cannot start"):
        LocalLauncher().run(["/nonexistent/nemo", "llm"], world=1, cell_dir=tmp_path / "c")


@pytest.mark.parametrize("name", ["a 0", "a'; echo foo", 'a"=0"', "ü ñ"])
def test_hostile_cell_dirs_and_exact_command(tmp_path: Path, name: str) -> None:
    arg = f"x {name}"
    run = LocalLauncher().run(_py("import sys; print(sys.argv[1])") + [arg], world=1,
                              cell_dir=tmp_path / name)
    assert run.returncode == 0 and arg in run.stdout_path.read_text()
    import subprocess
    replay = subprocess.run(["bash", str(tmp_path / name / "command.sh")], capture_output=True, text=True)
    assert replay.stdout.strip() == arg  # command.sh is the exact command, quoted once


def test_kill_recorded_groups(tmp_path: Path) -> None:
    cell = tmp_path / "run" / "cell"
    holder: dict[str, object] = {}
    t = threading.Thread(target=lambda: holder.setdefault(
        "run", LocalLauncher().run(_py("import time; time.sleep(60)"), world=2, cell_dir=cell)))
    t.start()
    for _ in range(100):
        if (cell / "pids").exists():
            break
        time.sleep(0.05)
    assert kill_recorded_groups(tmp_path / "run") == 2
    t.join(timeout=15)
    assert not t.is_alive() and holder["run"].returncode != 0


def test_slot_pool_blocks_until_free() -> None:
    pool = SlotPool(2)
    pool.acquire(2)
    got = threading.Event()
    t = threading.Thread(target=lambda: (pool.acquire(1), got.set()))
    t.start()
    assert not got.wait(0.3)
    pool.release(2)
    assert got.wait(2)
    pool.release(1)  # the waiter's slot
    pool.acquire(3)  # larger than capacity: runs alone, taking every slot
    got.clear()
    t2 = threading.Thread(target=lambda: (pool.acquire(1), got.set()))
    t2.start()
    assert not got.wait(0.3)
    pool.release(3)
    assert got.wait(2)
