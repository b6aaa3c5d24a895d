"""History fixtures: synthetic nightly rows and the screenshot script's seeder."""

from __future__ import annotations

import importlib.util
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)


def load_script(name: str) -> ModuleType:
    """Return ``scripts/<name>.py`` or ``benchmarks/<name>.py`` imported as a module."""
    path = next(p for p in (REPO / "scripts" / f"{name}.py", REPO / "benchmarks" / f"{name}.py") if p.exists())
    spec = importlib.util.spec_from_file_location(f"_script_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def row(night: int, value: float, gpus: int = 1, cluster: str = "ibex", **extra: Any) -> dict[str, Any]:
    """Return one history row (a stored cell joined with its run) of night ``night``."""
    base = {"run_id": f"n{night:02d}", "created_at": T0 + timedelta(days=night), "model": "llama31_8b",
            "track": "data_parallel", "gpus": gpus, "nodes": 1, "tp": 1, "pp": 1, "cp": 1, "ep": 1, "sp": False,
            "dp": gpus, "peft": "lora", "workload": "nemo", "device": "gpu", "cluster": cluster,
            "cell_id": f"llama31_8b/data_parallel/lora/g{gpus}/tp1-pp1-ep1", "status": "completed",
            "global_batch_size": 8, "median_step_time_s": value,
            "wall_clock_s": None if value is None else 100 + 250 * value,
            "peak_mem_mib": 16000.0, "user": "alice",
            "provenance": {"git_rev": "abc", "container_image": "nemo_25.07.sif", "cluster": cluster}}
    base.update(extra)
    return base
