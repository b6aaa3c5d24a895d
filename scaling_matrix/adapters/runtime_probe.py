"""Measure the tiny engine's runtime memory floor once per environment.

The memory predictor's CPU overhead is this measurement, not a constant: the same cell peaked at
391 MiB in one virtualenv and 451 MiB in a fresh one, mostly from what the process allocates after
its imports (threads, autograd, allocator arenas). So the probe is a minimal real run (1 rank,
2 steps, smallest model); the predictor adds each cell's model states and activations on top.
Cached per (interpreter, torch, transformers, peft) under ``$SCALING_HOME/cache``.
"""

from __future__ import annotations

import json
import sys
import tempfile
from importlib import metadata
from pathlib import Path

from scaling_matrix.adapters.outputs import read_memory_dir
from scaling_matrix.adapters.runner import CommandRunner, SubprocessRunner
from scaling_matrix.parsing.memory import summarize
from scaling_matrix.paths import scaling_home

#: A minimal real run: 1 rank, 8 steps of the smallest model. Its peak RSS is the runtime floor
#: (interpreter, torch, transformers, peft, threads, allocator) that every tiny cell pays.
PROBE_STEPS = 8


def _probe_argvs(python: str, workdir: Path) -> list[list[str]]:
    tiny = [python, "-m", "scaling_matrix.tiny", "llm"]
    model = workdir / "model"
    return [tiny + ["import", "model=tiny_llama", "source=tiny://seed/1", f"output_path={model}",
                    "overwrite=True", "--yes"],
            tiny + ["finetune", "--factory", "tiny_llama", "--yes", "trainer.devices=1",
                    f"trainer.max_steps={PROBE_STEPS}", "trainer.limit_val_batches=1", "data.global_batch_size=4",
                    "optim.lr_scheduler.warmup_steps=0", f"resume.restore_config.path={model}",
                    f"log.explicit_log_dir={workdir / 'log'}"]]


def _probe_peak_gib(python: str, runner: CommandRunner) -> float | None:
    with tempfile.TemporaryDirectory(prefix="runtime-probe-") as tmp:
        work = Path(tmp)
        env = {"SCALING_MEMORY_DIR": str(work / "memory"), "SCALING_MEMORY_INTERVAL_S": "0.1",
               "NEMO_DATASETS_CACHE": str(work / "datasets")}
        for argv in _probe_argvs(python, work):
            if not runner.run(argv, cwd=work, env=env, timeout_s=300).ok:
                return None
        peaks = [s.peak_mib for s in summarize(read_memory_dir(work / "memory")).values()]
    return max(peaks) / 1024 if peaks else None


def _versions() -> str:
    parts = []
    for dist in ("torch", "transformers", "peft"):
        try:
            parts.append(f"{dist}={metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{dist}=none")
    return ",".join(parts)


def cpu_runtime_baseline_gib(python: str | None = None, runner: CommandRunner | None = None,
                             cache_file: Path | None = None) -> float | None:
    """Return the peak RSS (GiB) of a minimal real tiny-engine run on this interpreter, or None on failure."""
    python = python or sys.executable
    cache_file = cache_file or scaling_home() / "cache" / "runtime-baseline.json"
    key = f"{python}|{_versions()}"
    cache: dict[str, float] = json.loads(cache_file.read_text()) if cache_file.is_file() else {}
    if key not in cache:
        peak = _probe_peak_gib(python, runner or SubprocessRunner())
        if peak is None:
            return None
        cache[key] = peak
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        cache_file.write_text(json.dumps(cache, indent=1))
    return cache[key]
