"""Fixtures for the SLURM tests: the real-cluster gate and helpers for the ``slurm`` tier.

Tests marked ``@pytest.mark.slurm`` need a real SLURM whose node is up (``scripts/local-slurm.sh up``).
Without one they are skipped, except when ``CI=true``: then they fail, so CI never passes
silently without having exercised SLURM.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from scaling_matrix.adapters.runner import CommandResult, SubprocessRunner
from scaling_matrix.adapters.slurm import SlurmClient
from scaling_matrix.slurm import JobStatus

_UP_STATES = ("idle", "mixed", "allocated", "completing")


def in_ci() -> bool:
    """Return True when running under CI (``CI=true``), where a missing SLURM is a failure."""
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def slurm_problem() -> str | None:
    """Return why the real-SLURM tier cannot run here, or None when a node is up."""
    tools = ("sinfo", "sbatch", "squeue", "scontrol", "scancel")
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        return f"{', '.join(missing)} not on PATH: run `sudo scripts/local-slurm.sh up`"
    try:
        proc = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], capture_output=True, text=True,
                              timeout=20, check=False)
    except subprocess.TimeoutExpired:
        return "sinfo timed out: is slurmctld running? (`sudo scripts/local-slurm.sh up`)"
    if proc.returncode != 0:
        return f"sinfo exited {proc.returncode}: {proc.stderr.strip()[-300:]} (run `sudo scripts/local-slurm.sh up`)"
    states = proc.stdout.split()
    if not any(s.rstrip("*~#!%$@^-+").split("+")[0] in _UP_STATES for s in states):
        return f"no SLURM node is up (sinfo node states: {states or 'none'}); run `sudo scripts/local-slurm.sh up`"
    return None


def cluster_capped_by_qos() -> bool:
    """Return True when the partition's QOS holds the cluster to the host's cores and GPUs (the two-node
    ``scripts/local-slurm.sh``): SLURM then refuses an oversized request by that QOS ("QOSGrpGRES",
    "QOSGrpCpuLimit": "Job violates accounting/QOS policy") before judging node sizes."""
    shown = subprocess.run(["scontrol", "show", "partition"], capture_output=True, text=True, check=False).stdout
    return "QoS=local-host" in shown


@pytest.fixture(scope="session")
def slurm_available() -> None:
    """Skip (or, under ``CI=true``, fail) when no real SLURM node is up."""
    problem = slurm_problem()
    if problem is None:
        return
    if in_ci():
        pytest.fail(f"CI=true but the real-SLURM tier cannot run: {problem}")
    pytest.skip(problem)


@pytest.fixture(scope="session")
def ci() -> bool:
    """Return True under ``CI=true`` (the cluster is dedicated to this run there)."""
    return in_ci()


@pytest.fixture(autouse=True)
def _gate_slurm_marker(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("slurm") is not None:
        request.getfixturevalue("slurm_available")


@dataclass
class RecordingRunner:
    """SubprocessRunner that records every argv, so real tests can count scheduler queries."""

    inner: SubprocessRunner = field(default_factory=SubprocessRunner)
    calls: list[tuple[str, ...]] = field(default_factory=list)

    def run(self, argv: Sequence[str], *, cwd: Path | None = None, env: Mapping[str, str] | None = None,
            timeout_s: float | None = None, stdin: str | None = None) -> CommandResult:
        """Return the inner runner's result after recording ``argv``."""
        self.calls.append(tuple(argv))
        return self.inner.run(argv, cwd=cwd, env=env, timeout_s=timeout_s, stdin=stdin)


@dataclass
class RealSlurm:
    """A SlurmClient on the real cluster plus helpers; cancels what it submitted at teardown."""

    client: SlurmClient
    runner: RecordingRunner
    workdir: Path
    submitted: list[str] = field(default_factory=list)

    def submit(self, name: str, body: str, *directives: str) -> tuple[str, Path]:
        """Return ``(job id, output file)`` after submitting a bash script with ``body``."""
        out = self.workdir / f"{name}.out"
        lines = ["#!/bin/bash", f"#SBATCH --job-name={name}", f"#SBATCH --output={out}",
                 *(f"#SBATCH {d}" for d in directives), body, ""]
        script = self.workdir / f"{name}.sbatch"
        script.write_text("\n".join(lines))
        job_id = self.client.submit(script, cwd=self.workdir)
        self.submitted.append(job_id)
        return job_id, out

    def wait(self, job_id: str, until: Callable[[JobStatus], bool] = lambda s: s.is_terminal,
             timeout_s: float = 60.0, interval_s: float = 0.5) -> JobStatus:
        """Return the job's status once ``until`` holds (default: terminal); fail after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            status = self.client.statuses([job_id])[job_id]
            if until(status):
                return status
            if time.monotonic() > deadline:
                pytest.fail(f"job {job_id} still {status.state} ({status.reason}) after {timeout_s:.0f}s")
            time.sleep(interval_s)


@pytest.fixture
def real_slurm(slurm_available: None, tmp_path: Path) -> Iterator[RealSlurm]:
    """Return a RealSlurm working in ``tmp_path`` (accounting auto-detected)."""
    runner = RecordingRunner()
    helper = RealSlurm(SlurmClient(runner), runner, tmp_path)
    yield helper
    if helper.submitted:
        subprocess.run(["scancel", *helper.submitted], capture_output=True, check=False, timeout=30)
