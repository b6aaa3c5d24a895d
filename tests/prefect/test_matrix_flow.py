"""The scaling-matrix flow under prefect_test_harness, on the real tiny engine and local launcher."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml
from prefect.artifacts import Artifact

from flows.matrix import scaling_matrix
from scaling_matrix.adapters.store import ResultsStore
from scaling_matrix.config.loading import load_matrix
from scaling_matrix.matrix import expand
from scaling_matrix.paths import results_url

FIX = Path(__file__).resolve().parents[1] / "fixtures"
QUICK = str(FIX / "matrices" / "quick.yaml")


def _profile(tmp_path: Path, **extra: object) -> str:
    data = {"name": "test-local", "launcher": "local", "workload": "tiny", "device": "cpu",
            "capacity_gpus": 2, "retries": 0, **extra}
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_quick_matrix_completes_and_publishes(scaling_home: Path, tmp_path: Path) -> None:
    state = scaling_matrix(matrix=QUICK, profile=_profile(tmp_path), run_id="run-ok", return_state=True)
    assert state.is_completed(), state.message
    cells = ResultsStore(results_url()).cells("run-ok")
    assert sorted(c["gpus"] for c in cells) == [1, 2]
    for c in cells:
        assert c["status"] == "completed" and c["workload"] == "tiny" and c["device"] == "cpu"
        assert c["step_time_s"] > 0 and c["peak_mem_mib"] > 0 and c["final_loss"] < c["first_loss"]
        cell_dir = Path(c["cell_dir"])
        assert cell_dir.parent == scaling_home / "runs" / "run-ok"
        assert (cell_dir / "command.sh").is_file() and list((cell_dir / "memory").glob("*.csv"))
    table = Artifact.get("scaling-quick-tiny-llama-data-parallel-tiny-cpu")
    summary = Artifact.get("summary-quick")
    assert table is not None and table.type == "table" and "run-ok" in (table.description or "")
    assert summary is not None and "Time scaling vs 1 GPU" in str(summary.data)
    # Resume: completed cells are kept, nothing is re-run.
    state2 = scaling_matrix(matrix=QUICK, profile=_profile(tmp_path), run_id="run-ok", return_state=True)
    assert state2.is_completed()
    assert all(a["attempt"] == 1 for a in ResultsStore(results_url()).attempts("run-ok"))


def test_failed_cell_is_stored_and_flow_fails(scaling_home: Path, tmp_path: Path) -> None:
    profile = _profile(tmp_path, executable=[sys.executable, str(FIX / "failing_nemo.py")])
    state = scaling_matrix(matrix=QUICK, profile=profile, run_id="run-bad", return_state=True)
    assert state.is_failed()
    cells = {c["gpus"]: c for c in ResultsStore(results_url()).cells("run-bad")}
    assert cells[1]["status"] == "completed"
    assert cells[2]["status"] == "failed" and cells[2]["failure_class"] == "config_error"
    assert "simulated bad override" in cells[2]["reason"] and cells[2]["exit_code"] == 1
    assert ResultsStore(results_url()).run("run-bad")["status"] == "failed"


def test_dry_run_launches_nothing_and_writes_every_job(scaling_home: Path, tmp_path: Path) -> None:
    out = scaling_matrix(matrix=QUICK, profile=_profile(tmp_path), run_id="dry", dry_run=True)
    assert out == {"run_id": "dry", "dry_run": True, "cells": 2}
    folder = scaling_home / "runs" / "dry"
    index = json.loads((folder / "rendered.json").read_text())
    assert sorted(index["cells"]) == sorted(pc.cell.key for pc in expand(load_matrix(QUICK)))
    for job in index["cells"].values():  # every cell's exact argv, nothing run
        cell = Path(job["folder"])
        assert json.loads((cell / "argv.json").read_text())[-1].startswith("log.explicit_log_dir=")
        assert (cell / "command.sh").read_text().splitlines()[1] == job["command"]
        assert not (cell / "stdout.log").exists() and not (cell / "memory").exists()
    assert not (scaling_home / "results.db").exists() and not (scaling_home / "models").exists()
    artifact = Artifact.get("rendered-quick")
    assert artifact is not None and all(job["command"] in str(artifact.data) for job in index["cells"].values())


def test_dry_run_on_slurm_writes_every_batch_script(scaling_home: Path, tmp_path: Path) -> None:
    """No scheduler needed: the dry run renders each cell's job.sbatch (and the import's) and stops there."""
    profile = _profile(tmp_path, launcher="slurm", slurm={"partition": "gpu", "cpus_per_task": 1})
    scaling_matrix(matrix=QUICK, profile=profile, run_id="dry-slurm", dry_run=True)
    index = json.loads((scaling_home / "runs" / "dry-slurm" / "rendered.json").read_text())
    scripts = [Path(j["script"]).read_text() for j in [*index["cells"].values(), *index["imports"].values()]]
    assert len(scripts) == 3 and all(s.startswith("#!/bin/bash\n#SBATCH --job-name=") for s in scripts)
    assert sorted(int(s.split("--ntasks-per-node=")[1].split()[0]) for s in scripts) == [1, 1, 2]
    assert "#SBATCH --partition=gpu" in scripts[0] and "rendered-quick" in str(Artifact.get("rendered-quick").key)
