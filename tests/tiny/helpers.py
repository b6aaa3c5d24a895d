"""Helpers for the tiny-engine tests: run the real CLI in subprocesses (no mocks)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from scaling_matrix.adapters.local import free_port

PYTHON = sys.executable
ENGINE = [PYTHON, "-m", "scaling_matrix.tiny"]
RUN_TIMEOUT_S = 180
_RANK_VARS = re.compile(r"^(RANK|WORLD_SIZE|LOCAL_RANK|MASTER_ADDR|MASTER_PORT|SLURM_.*|NEMO_.*|SCALING_.*)$")


@dataclass(frozen=True)
class Finished:
    """One finished engine process."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    wall_s: float


@dataclass(frozen=True)
class FinetuneRun:
    """A fine-tune run: its log dir and one Finished per rank."""

    log_dir: Path
    ranks: list[Finished]

    @property
    def rank0(self) -> Finished:
        """Returns rank 0's process."""
        return self.ranks[0]


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Returns os.environ without rank/SLURM/NeMo/scaling variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not _RANK_VARS.match(k)}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def run_engine(args: list[str], env: dict[str, str] | None = None, stdin: str = "") -> Finished:
    """Returns the finished ``python -m scaling_matrix.tiny <args>`` process."""
    start = time.perf_counter()
    proc = subprocess.run(ENGINE + args, env=env or clean_env(), input=stdin, capture_output=True, text=True,
                          timeout=RUN_TIMEOUT_S, check=False)
    return Finished(args, proc.returncode, proc.stdout, proc.stderr, time.perf_counter() - start)


def launch_ranks(args: list[str], world: int, env: dict[str, str]) -> list[Finished]:
    """Returns the finished processes of a ``world``-rank run (torch env convention, one local port)."""
    port = str(free_port())
    procs = []
    start = time.perf_counter()
    for rank in range(world):
        rank_env = {**env, "RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank),
                    "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port}
        procs.append(subprocess.Popen(ENGINE + args, env=rank_env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    out = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=RUN_TIMEOUT_S)
        out.append(Finished(args, proc.returncode, stdout, stderr, time.perf_counter() - start))
    return out


def finetune_args(model_dir: Path, log_dir: Path, *extra: str, factory: str = "tiny_llama") -> list[str]:
    """Returns ``llm finetune`` arguments for the session's model and ``log_dir``."""
    return ["llm", "finetune", "--factory", factory, "--yes", f"resume.restore_config.path={model_dir}",
            f"log.explicit_log_dir={log_dir}", *extra]


PROGRESS = re.compile(r"^Training epoch (\d+), iteration (\d+)/(\d+)((?: \| [^:|]+: [^|]+)+)$")


def progress_lines(stdout: str) -> list[dict[str, str]]:
    """Returns the ``key: value`` pairs of every NeMo progress line (plus epoch/iteration/last_iteration)."""
    out = []
    for line in stdout.splitlines():
        match = PROGRESS.match(line.strip())
        if match is None:
            continue
        pairs = dict(p.split(": ", 1) for p in match.group(4).split(" | ")[1:])
        pairs.update(epoch=match.group(1), iteration=match.group(2), last_iteration=match.group(3))
        out.append({k.strip(): v.strip() for k, v in pairs.items()})
    return out
