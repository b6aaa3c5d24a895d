"""What SLURM says about the chaos tier's jobs and nodes (squeue, sacct, sinfo), and the node changes a test
undoes. Only jobs the tier submitted are ever touched (by id, or by a work directory under a test's tmp dir)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from tests.slurm.conftest import in_ci


def jobs_under(directory: Path) -> list[str]:
    """Return the ids of every queued or running job whose work directory lies under ``directory``."""
    out = subprocess.run(["squeue", "-a", "-h", "-o", "%i|%Z"], capture_output=True, text=True).stdout
    return [i for i, _, w in (line.partition("|") for line in out.splitlines()) if w.startswith(f"{directory}/")]


def in_queue(job_ids: list[str]) -> list[str]:
    """Return the ids of ``job_ids`` that ``squeue`` still lists (every partition)."""
    out = subprocess.run(["squeue", "-a", "-h", "-o", "%i"], capture_output=True, text=True).stdout.split()
    return [j for j in job_ids if j in out]


def sacct_states(job_ids: list[str]) -> dict[str, str]:
    """Return SLURM's recorded state of each job (``sacct -X``; ``scontrol`` where accounting lags)."""
    out = subprocess.run(["sacct", "-X", "-n", "-P", "-o", "JobID,State", "-j", ",".join(job_ids)],
                         capture_output=True, text=True).stdout
    states = dict(line.split("|", 1) for line in out.splitlines() if "|" in line)
    return {j: states.get(j, "?").split()[0] for j in job_ids}


def assert_sacct(expected: dict[str, str], timeout_s: float = 30) -> None:
    """Assert SLURM's accounting records ``expected`` (job id -> state), allowing slurmdbd a moment to catch up."""
    deadline = time.monotonic() + timeout_s
    while (got := sacct_states(list(expected))) != expected and time.monotonic() < deadline:
        time.sleep(0.5)
    assert got == expected


def jobs_on(node: str) -> list[str]:
    """Return the ids of every job running on ``node`` (any partition)."""
    out = subprocess.run(["squeue", "-a", "-h", "-w", node, "-o", "%i"], capture_output=True, text=True).stdout
    return out.split()


def node_state(node: str) -> str:
    return subprocess.run(["sinfo", "-h", "-N", "-n", node, "-o", "%T"], capture_output=True,
                          text=True).stdout.strip()


def resume_node(node: str) -> None:
    """Return once ``node`` is back in service (what a test changed is always undone)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state = node_state(node)
        if state.startswith(("idle", "mixed", "allocated", "completing")) and "drain" not in state:
            return
        subprocess.run(["scontrol", "update", f"NodeName={node}", "State=RESUME"], capture_output=True)
        time.sleep(0.5)
    raise AssertionError(f"node {node} did not come back: run `sudo scripts/local-slurm.sh up`")


def only_ours_on(node: str, ours: list[str], timeout_s: float = 60) -> None:
    """Wait until no job but ``ours`` runs on ``node``; skip (fail in CI) rather than touch others' jobs."""
    deadline = time.monotonic() + timeout_s
    while others := [j for j in jobs_on(node) if j not in ours]:
        if time.monotonic() > deadline:
            (pytest.fail if in_ci() else pytest.skip)(f"jobs {others} of others run on {node}; not touching it")
        time.sleep(1)


__all__ = ["assert_sacct", "in_queue", "jobs_on", "jobs_under", "node_state", "only_ours_on", "resume_node",
           "sacct_states"]
