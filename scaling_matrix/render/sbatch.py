"""Render per-cell sbatch scripts: workshop directives, caches, memory monitor, footer, srun.

Pure: a list of lines built from validated models, every value quoted once (``shell.py``).
The script keeps srun's exit status as the job's exit status (the workshop's scripts did not).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import PurePath

from scaling_matrix.config.models import ProfileSpec, SlurmSettings
from scaling_matrix.errors import RenderError
from scaling_matrix.render.container import container_argv, srun_options
from scaling_matrix.render.shell import shell_export, shell_join

NVIDIA_SMI_MONITOR = ["nvidia-smi", "--query-gpu=timestamp,index,name,memory.used,memory.total",
                      "--format=csv,nounits", "-l", "5"]


@dataclass(frozen=True)
class JobRequest:
    """What one batch job asks for and runs (Prefect-free, pure data)."""

    job_name: str
    nodes: int
    tasks_per_node: int
    gpus_per_node: int
    workdir: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    memory_dir: str | None = None
    dirs: list[str] = field(default_factory=list)


def as_sbatch_flag(key: str, value: object) -> str:
    """Return one ``#SBATCH --key=value`` line, the value quoted once when needed."""
    text = str(value)
    if "\n" in text:
        raise RenderError(f"sbatch value for --{key} contains a newline: {text!r}")
    return f"#SBATCH --{key.replace('_', '-')}={shlex.quote(text)}"


def constraint_for(slurm: SlurmSettings, gpus_per_node: int) -> str | None:
    """Return the constraint for a job with ``gpus_per_node`` (smallest threshold that fits)."""
    fitting = sorted(k for k in slurm.constraint_by_gpus if k >= gpus_per_node)
    return slurm.constraint_by_gpus[fitting[0]] if fitting else slurm.constraint


def directive_lines(req: JobRequest, slurm: SlurmSettings) -> list[str]:
    """Return the #SBATCH lines (workshop order, optional ones only when set)."""
    flags: list[tuple[str, object]] = [("job-name", req.job_name), ("nodes", req.nodes),
                                       ("ntasks-per-node", req.tasks_per_node)]
    if req.gpus_per_node:
        flags.append(("gpus-per-node", req.gpus_per_node))
    flags += [("cpus-per-task", slurm.cpus_per_task), ("time", slurm.time_limit)]
    for key in ("partition", "account", "qos", "reservation", "constraint", "mem"):
        value = constraint_for(slurm, req.gpus_per_node) if key == "constraint" else getattr(slurm, key)
        if value:
            flags.append((key, value))
    flags.append(("output", str(PurePath(req.workdir) / "slurm-%j.out")))
    lines = [as_sbatch_flag(k, v) for k, v in flags]
    for extra in slurm.extra_sbatch_args:
        if not extra.startswith("--") or "\n" in extra:
            raise RenderError(f"slurm.extra_sbatch_args entry {extra!r} must look like --key=value")
        lines.append(f"#SBATCH {shlex.quote(extra)}")
    return lines


def environment_lines(req: JobRequest, profile: ProfileSpec) -> list[str]:
    """Return module loads, exports (cache dirs, rendezvous) and directory creation."""
    lines = [f"module load {shlex.quote(m)}" for m in (profile.slurm.modules if profile.slurm else [])]
    lines += shell_export(req.env)
    lines += ['export MASTER_ADDR="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)"',
              'export MASTER_PORT="$((20000 + SLURM_JOB_ID % 20000))"', "export PYTHONUNBUFFERED=1"]
    dirs = list(req.dirs)
    if req.memory_dir:
        lines += shell_export({"SCALING_MEMORY_DIR": req.memory_dir})
        dirs.append(req.memory_dir)
    if dirs:
        lines.append(shell_join(["mkdir", "-p", *dirs]))
    return lines


def monitor_lines(req: JobRequest, profile: ProfileSpec) -> list[str]:
    """Return the GPU memory monitor sidecar (GPU profiles; the tiny engine writes its own CSV)."""
    if profile.device != "gpu" or not req.memory_dir:
        return ["# memory: the tiny engine samples its own per-rank CSV into $SCALING_MEMORY_DIR"]
    out = shell_join([str(PurePath(req.memory_dir) / "gpu_memory_log.csv")])
    return [f"{shell_join(NVIDIA_SMI_MONITOR)} > {out} &", "GPU_MONITOR_PID=$!",
            "trap 'kill \"$GPU_MONITOR_PID\" 2>/dev/null' EXIT"]


FOOTER_START = ['echo "==============================="', 'echo " Job started"',
                'echo " Start time : $(date \'+%Y-%m-%d %H:%M:%S\')"', 'echo "==============================="',
                "start_ts=$(date +%s)"]
FOOTER_END = ["end_ts=$(date +%s)", "total=$((end_ts - start_ts))",
              'echo "==============================="', 'echo " Job finished"',
              'echo " End time   : $(date \'+%Y-%m-%d %H:%M:%S\')"',
              'printf " Total time : %02d:%02d:%02d\\n" $((total / 3600)) $((total % 3600 / 60)) $((total % 60))',
              'echo " srun exit  : $srun_rc"', 'echo "==============================="']


def render_sbatch(req: JobRequest, profile: ProfileSpec) -> str:
    """Return the full batch script of ``req`` on ``profile``."""
    if profile.slurm is None:
        raise RenderError(f"profile '{profile.name}' has no slurm: section")
    srun = ["srun", "--kill-on-bad-exit=1", *srun_options(profile.container),
            *container_argv(profile.container, req.argv, gpu=profile.device == "gpu")]
    lines = ["#!/bin/bash", *directive_lines(req, profile.slurm), "",
             "# rendered by scaling-matrix; the job's exit status is srun's", "set -uo pipefail",
             *environment_lines(req, profile), *monitor_lines(req, profile), *FOOTER_START,
             shell_join(srun), "srun_rc=$?", *FOOTER_END, 'exit "$srun_rc"']
    return "\n".join(lines) + "\n"
