"""The contract tier: everything we render for NeMo, checked by the real NeMo libraries.

Each library lives in its own virtualenv, built from a lock in ``contract/`` by
``scripts/contract-venvs.sh`` (``make contract``) under ``~/.cache/scaling-matrix/contract`` and never
in the project's venv. The project side renders through the commands users run (``scaling-matrix plan
--json``, ``scaling-matrix automodel --json``); a checker script runs inside the library's venv.
Without the venvs these tests skip locally, and fail when ``CI=true`` (CI builds them first).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CLI = str(Path(sys.executable).with_name("scaling-matrix"))
MARK = ".contract-complete"


def in_ci() -> bool:
    """Return True under CI (``CI=true``), where a missing contract venv is a failure."""
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def contract_venv(name: str) -> Path:
    """Return the built contract venv ``name`` (skip, or fail under CI, when it is not built)."""
    out = subprocess.run([str(REPO / "scripts" / "contract-venvs.sh"), "path", name], capture_output=True,
                         text=True, check=True, cwd=REPO)
    venv = Path(out.stdout.strip())
    if not (venv / MARK).is_file():
        message = f"contract venv {name} not built at {venv}: run `make contract` (scripts/contract-venvs.sh)"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    return venv


def run_checker(venv: Path, checker: str, data: dict[str, Any], workdir: Path,
                timeout: int = 900) -> tuple[int, dict[str, Any]]:
    """Run ``contract/<checker>`` in ``venv`` on ``data``; return (exit status, its JSON report)."""
    path = workdir / f"{checker}.input.json"
    path.write_text(json.dumps(data, indent=1))
    proc = subprocess.run([str(venv / "bin" / "python"), "-W", "ignore", str(REPO / "contract" / checker),
                           str(path)], capture_output=True, text=True, timeout=timeout, cwd=workdir,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONNOUSERSITE": "1"})
    assert proc.returncode in (0, 1), f"{checker} crashed ({proc.returncode}):\n{proc.stderr[-3000:]}"
    return proc.returncode, json.loads(proc.stdout)


def scaling_matrix(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    """Run the project's own CLI (the entry point users run) with ``$SCALING_HOME`` = ``home``."""
    env = {**os.environ, "SCALING_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=300, env=env, cwd=home.parent,
                          check=False)


def nemo_presets() -> list[str]:
    """Return the preset matrices with a NeMo model (the tiny-only ones have nothing NeMo would read)."""
    folder = REPO / "scaling_matrix" / "presets" / "matrices"
    names = sorted(p.stem for p in folder.glob("*.yaml")
                   if any(m.get("workload") == "nemo" for m in yaml.safe_load(p.read_text())["models"].values()))
    assert names, "no preset matrix has a NeMo model: the contract tier would check nothing"
    return names


def nemo_profiles() -> list[str]:
    """Return the preset profiles that run the NeMo workload."""
    folder = REPO / "scaling_matrix" / "presets" / "profiles"
    names = sorted(p.stem for p in folder.glob("*.yaml") if yaml.safe_load(p.read_text())["workload"] == "nemo")
    assert names, "no NeMo profile preset"
    return names


COVERAGE = {"nemo2": REPO / "tests/fixtures/matrices/contract-coverage.yaml",
            "automodel": REPO / "tests/fixtures/matrices/contract-coverage-automodel.yaml"}
