"""The cluster side of ``benchmarks/orchestration.py``: RPC counters, job end times, the queue, inputs.

slurmctld RPCs come from ``sdiag`` (cumulative counts per message type; never reset here: a reset
would spoil other people's readings, so every number is a before/after delta), slurmdbd RPCs from
``sacctmgr show stats``. The counters are cluster-wide: whatever else talks to SLURM meanwhile is
counted too, hence "check ``squeue`` is free of others' jobs" and repeated runs.
"""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import yaml

_RPC_LINE = re.compile(r"^\s+([A-Z_]+)\s+\(\s*\d+\)\s+count:(\d+)")
#: RPCs a job makes by itself (its step, its end, the accounting of it), whoever submitted it.
JOB_OWN_RPCS = frozenset({
    "REQUEST_COMPLETE_BATCH_SCRIPT", "REQUEST_STEP_COMPLETE", "REQUEST_HET_JOB_ALLOC_INFO",
    "REQUEST_JOB_STEP_CREATE", "REQUEST_CANCEL_JOB_STEP", "MESSAGE_EPILOG_COMPLETE", "REQUEST_PING",
    "MESSAGE_NODE_REGISTRATION_STATUS", "REQUEST_JOB_ALLOCATION_INFO", "REQUEST_COMPLETE_PROLOG",
    "DBD_JOB_START", "DBD_JOB_COMPLETE", "DBD_STEP_START", "DBD_STEP_COMPLETE", "DBD_SEND_MULT_MSG",
    "DBD_SEND_MULT_JOB_START", "DBD_NODE_STATE", "DBD_CLUSTER_TRES", "DBD_JOB_SUSPEND",
})


def run(argv: list[str], timeout_s: float = 60) -> str:
    """Return the stdout of ``argv`` (raises on a non-zero exit)."""
    return subprocess.run(argv, capture_output=True, text=True, check=True, timeout=timeout_s).stdout


def rpc_counts(text: str) -> dict[str, int]:
    """Return the per-message-type RPC counts of ``sdiag`` or ``sacctmgr show stats`` output."""
    section = text.split("by message type", 1)[1].split("by user", 1)[0] if "by message type" in text else ""
    return {m.group(1): int(m.group(2)) for line in section.splitlines() if (m := _RPC_LINE.match(line))}


@dataclass
class Rpcs:
    """RPC counts between two snapshots: slurmctld (``sdiag``) and slurmdbd (``sacctmgr show stats``)."""

    ctld: dict[str, int] = field(default_factory=dict)
    dbd: dict[str, int] = field(default_factory=dict)

    @staticmethod
    def snapshot() -> Rpcs:
        """Return the cumulative counts now."""
        return Rpcs(rpc_counts(run(["sdiag"])), rpc_counts(run(["sacctmgr", "show", "stats"])))

    def minus(self, before: Rpcs, own: Rpcs | None = None) -> Rpcs:
        """Return the counts since ``before`` less ``own`` (the snapshot pair's own cost)."""
        def sub(a: dict[str, int], b: dict[str, int], c: dict[str, int]) -> dict[str, int]:
            out = {k: a.get(k, 0) - b.get(k, 0) - c.get(k, 0) for k in set(a) | set(b)}
            return {k: v for k, v in sorted(out.items()) if v}
        return Rpcs(sub(self.ctld, before.ctld, own.ctld if own else {}),
                    sub(self.dbd, before.dbd, own.dbd if own else {}))

    def summary(self) -> dict[str, int]:
        """Return totals: all, and those a client made (not a job's own step/end/accounting messages)."""
        client = {k: v for k, v in {**self.ctld, **self.dbd}.items() if k not in JOB_OWN_RPCS}
        return {"ctld": sum(self.ctld.values()), "dbd": sum(self.dbd.values()),
                "ctld_client": sum(v for k, v in self.ctld.items() if k not in JOB_OWN_RPCS),
                "dbd_client": sum(v for k, v in self.dbd.items() if k not in JOB_OWN_RPCS),
                "client": sum(client.values())}


#: SLURM client commands whose every call the benchmark logs (a wrapper first on PATH for all ways).
SLURM_COMMANDS = ("sbatch", "squeue", "sacct", "scancel", "scontrol", "sinfo", "srun", "salloc")
_WRAPPER = '#!/bin/sh\n[ -n "$ORCH_CMD_LOG" ] && [ -z "$SLURM_JOB_ID" ] && echo "$(date +%s.%N) {name}" >> "$ORCH_CMD_LOG"\nexec {real} "$@"\n'


def log_slurm_commands(folder: Path) -> Path:
    """Put logging wrappers of SLURM's client commands first on this process's PATH (children inherit
    it: every way, its threads, the worker's flow runs) and return the log: one ``epoch name`` line per
    call. Unlike sdiag's cluster-wide counters this counts only the benchmark's own commands."""
    import os
    import shutil

    bin_dir, log = folder / "slurm-bin", folder / "slurm-commands.log"
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name in SLURM_COMMANDS:
        real = shutil.which(name)
        if real and not real.startswith(str(bin_dir)):
            (bin_dir / name).write_text(_WRAPPER.format(name=name, real=real))
            (bin_dir / name).chmod(0o755)
    os.environ["PATH"] = f"{bin_dir}:{os.environ['PATH']}"
    os.environ["ORCH_CMD_LOG"] = str(log)
    log.touch()
    return log


def commands_between(log: Path, t0: float, t1: float) -> dict[str, int]:
    """Return how many times each SLURM command was called between epochs ``t0`` and ``t1``."""
    counts: dict[str, int] = {}
    for line in log.read_text().splitlines():
        stamp, _, name = line.partition(" ")
        if t0 <= float(stamp) <= t1:
            counts[name] = counts.get(name, 0) + 1
    return dict(sorted(counts.items()))


def snapshot_cost() -> Rpcs:
    """Return what one pair of snapshots itself adds to the counters (measured: two in a row)."""
    a = Rpcs.snapshot()
    return Rpcs.snapshot().minus(a)


def others_jobs(mine: set[str] = frozenset()) -> list[str]:
    """Return the ids of queued or running jobs that are not ``mine``."""
    return [j for j in run(["squeue", "-h", "-o", "%i"]).split() if j not in mine]


def wait_for_idle_queue(timeout_s: float, say) -> bool:
    """Wait until ``squeue`` lists no job (other people's tests); return False if it never does."""
    deadline = time.monotonic() + timeout_s
    while (busy := others_jobs()) and time.monotonic() < deadline:
        say(f"waiting for an empty queue ({len(busy)} jobs of others)")
        time.sleep(5)
    return not others_jobs()


def end_times(job_ids: list[str]) -> dict[str, float]:
    """Return each job's end (epoch seconds; SLURM keeps whole seconds) from ``sacct``."""
    if not job_ids:
        return {}
    out = run(["sacct", "-X", "-n", "-P", "-o", "JobID,End", "-j", ",".join(job_ids)])
    ends = {}
    for line in out.splitlines():
        job, _, end = line.partition("|")
        if end and end[0].isdigit():
            ends[job] = datetime.fromisoformat(end).timestamp()  # local time, as SLURM prints it
    return ends


def write_inputs(folder: Path, n: int, sleep_s: float, interval_s: float) -> tuple[Path, Path]:
    """Write a matrix of ``n`` one-CPU cells (n a multiple of 4) and a SLURM profile of workload
    ``sleep``; return (matrix, profile)."""
    if n % 4:
        raise SystemExit(f"--sizes: {n} is not a multiple of 4 (cells come as model x 2 tracks x 2 peft)")
    models = [f"sleep_{i:03d}" for i in range(n // 4)]
    matrix = {"name": f"sleep-{n}", "description": f"{n} cells of 'sleep {sleep_s:g}' (orchestration benchmark)",
              "models": {m: {"factory": "sleep", "family": "dense", "source": "none", "workload": "sleep"}
                         for m in models},
              "axes": [{"model": models, "track": ["data_parallel", "model_parallel"], "peft": ["lora", "none"],
                        "gpus": [1]}]}
    profile = {"name": "bench-sleep", "description": "orchestration benchmark: sleep jobs on the local SLURM",
               "launcher": "slurm", "workload": "sleep", "device": "cpu", "cluster": "local-slurm",
               "capacity_gpus": 8, "retries": 0, "sleep_s": sleep_s, "cell_timeout_s": 3600,
               "slurm": {"partition": "gpu", "time_limit": "01:00:00", "cpus_per_task": 1,
                         "poll_interval_s": interval_s}}
    folder.mkdir(parents=True, exist_ok=True)
    paths = folder / f"sleep-{n}.yaml", folder / f"bench-sleep-{sleep_s:g}.yaml"
    paths[0].write_text(yaml.safe_dump(matrix, sort_keys=False))
    paths[1].write_text(yaml.safe_dump(profile, sort_keys=False))
    return paths


def write_nemo_matrix(folder: Path, n: int) -> Path:
    """Write an ``n``-cell NeMo matrix (Llama 3.1 8B and Mixtral 8x7B over every valid layout of 1-16
    GPUs that the ibex profile accepts, as the workshop's models) for the ``plan`` timing."""
    from itertools import product

    from scaling_matrix.config.loading import load_matrix, load_profile
    from scaling_matrix.matrix import PlannedCell, check_against_profile, check_cell
    from scaling_matrix.config.models import CellSpec

    base, ibex = load_matrix("workshop"), load_profile("ibex")
    cells = []
    for model, track, peft, gpus, tp, pp, ep in product(("llama31_8b", "mixtral_8x7b"), ("data_parallel",
                                                        "model_parallel"), ("lora", "none"), (1, 2, 4, 8, 16),
                                                       (1, 2, 4, 8), (1, 2, 4), (1, 2, 4, 8)):
        row = {"model": model, "track": track, "peft": peft, "gpus": gpus, "nodes": 2 if gpus > 8 else 1,
               "tp": tp, "pp": pp, "ep": ep, "sp": tp > 1 and ep > 1}
        pc = PlannedCell(CellSpec.model_validate({**base.defaults, **row}), base.models[model])
        if not check_cell(pc) and not check_against_profile(pc, ibex):
            cells.append(row)
        if len(cells) == n:
            break
    if len(cells) < n:
        raise SystemExit(f"--plan {n}: only {len(cells)} distinct valid NeMo cells")
    doc = {"name": f"nemo-{n}", "description": f"{n} NeMo cells for the plan timing",
           "models": {k: v.model_dump(exclude_defaults=True) for k, v in base.models.items()},
           "defaults": base.defaults, "cells": cells}
    path = folder / f"nemo-{n}.yaml"
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def machine() -> dict[str, str]:
    """Return what the numbers were measured on (host, cores, SLURM version, nodes and the cap)."""
    import os
    import platform

    nodes = run(["sinfo", "-h", "-N", "-o", "%N %c %G"]).split("\n")
    return {"host": platform.node(), "cpus": str(os.cpu_count()), "python": platform.python_version(),
            "slurm": run(["sinfo", "--version"]).strip(), "nodes": "; ".join(x for x in nodes if x),
            "shared": "2-core development VM shared with other engineers' tests"}
