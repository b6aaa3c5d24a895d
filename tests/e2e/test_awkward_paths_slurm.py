"""Awkward but legitimate values end to end: the CLI, a real bash, the real sbatch/srun.

$SCALING_HOME, the checkpoint path, the executable, the container image and an exported value all
hold spaces, quotes, ``$( )``, backticks and ``; & |``. They are accepted, quoted once at the one
quoting place, and arrive byte for byte in the job; nothing in them is ever executed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from scaling_matrix.adapters.store import ResultsStore
from tests.slurm.conftest import in_ci, slurm_problem

pytestmark = [pytest.mark.slurm, pytest.mark.slow, pytest.mark.timeout(420)]
FIX = Path(__file__).resolve().parents[1] / "fixtures"
CLI = str(Path(sys.executable).parent / "scaling-matrix")
AWKWARD_DIR = "a b'c \"q\" $(touch pwned) `touch pwned`;&|"
AWKWARD_VALUE = "it's a \"test\" $(touch pwned) `touch pwned` ; & | > pwned $HOME"
MATRIX = {"name": "awkward", "models": {"tiny_llama": {"factory": "tiny_llama", "family": "dense",
                                                      "source": "tiny://seed/1234", "workload": "tiny"}},
          "defaults": {"max_steps": 6, "global_batch_size": 2, "warmup_steps": 1, "limit_val_batches": 1,
                       "val_check_interval": 3, "note": "[bold]kept[/bold] as written"},
          "cells": [{"model": "tiny_llama", "track": "data_parallel", "gpus": 2}]}


def _profile(awk: Path) -> dict[str, object]:
    image = awk / "img dir" / "nemo 25.07.sif"
    image.parent.mkdir(parents=True)
    image.write_bytes(b"stand-in image")
    wrapper = awk / "bin dir" / "recording nemo.py"
    wrapper.parent.mkdir()
    shutil.copy(FIX / "recording_nemo.py", wrapper)
    return {"name": "awkward", "launcher": "slurm", "workload": "tiny", "device": "cpu", "capacity_gpus": 8,
            "retries": 0, "executable": [sys.executable, str(wrapper)],
            "model_paths": {"tiny_llama": str(awk / "models dir" / "tiny llama")},
            "env": {"AWKWARD_VALUE": AWKWARD_VALUE, "RECORD_FILE": str(awk / "record file.jsonl")},
            "slurm": {"partition": "gpu", "time_limit": "00:10:00", "cpus_per_task": 1, "poll_interval_s": 1},
            "container": {"runtime": "singularity", "image": str(image), "binds": [f"{awk}:{awk}"]}}


def test_awkward_values_reach_the_job_verbatim_and_never_run(tmp_path: Path) -> None:
    problem = slurm_problem()
    if problem:
        (pytest.fail if in_ci() else pytest.skip)(problem)
    awk = tmp_path / AWKWARD_DIR
    awk.mkdir()
    (awk / "matrix.yaml").write_text(yaml.safe_dump(MATRIX))
    profile = _profile(awk)
    (awk / "profile.yaml").write_text(yaml.safe_dump(profile))
    home = awk / "home dir"
    env = {**os.environ, "SCALING_HOME": str(home), "PREFECT_HOME": str(tmp_path / "prefect"),
           "PATH": f"{FIX / 'bin'}:{os.environ['PATH']}", "SINGULARITY_STANDIN_LOG": str(awk / "sif.log")}
    env.pop("PREFECT_API_URL", None)
    env.pop("SCALING_DB_URL", None)
    done = subprocess.run([CLI, "run", "--matrix", str(awk / "matrix.yaml"), "--profile", str(awk / "profile.yaml")],
                          env=env, cwd=awk, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    records = [json.loads(line) for line in (awk / "record file.jsonl").read_text().splitlines()]
    finetunes = [r for r in records if "finetune" in r["argv"]]
    assert len(finetunes) == 2 and {r["rank"] for r in finetunes} == {"0", "1"}  # srun: one call per rank
    restore = f"resume.restore_config.path={awk / 'models dir' / 'tiny llama'}"
    assert all(restore in r["argv"] and r["awkward"] == AWKWARD_VALUE for r in finetunes)
    imports = [r for r in records if "import" in r["argv"]]
    assert imports and f"output_path={awk / 'models dir' / 'tiny llama'}" in imports[0]["argv"]
    assert (awk / "models dir" / ".tiny llama.scaling-matrix-import").is_file()  # claimed before import
    sif_calls = [c.split("\0") for c in (awk / "sif.log").read_text().split("\0\n") if c]
    assert all(str(profile["container"]["image"]) in call for call in sif_calls)  # type: ignore[index]
    [run] = ResultsStore(f"sqlite:///{home / 'results.db'}").runs(5)
    cells = ResultsStore(f"sqlite:///{home / 'results.db'}").cells(run["run_id"])
    assert [c["status"] for c in cells] == ["completed"] and Path(cells[0]["cell_dir"]).is_relative_to(home)
    assert cells[0]["config_json"]["note"] == "[bold]kept[/bold] as written"  # free text stored as written
    script = (Path(cells[0]["cell_dir"]) / "job.sbatch").read_text()
    assert subprocess.run(["bash", "-n"], input=script, text=True).returncode == 0
    pwned = list(tmp_path.rglob("pwned")) + [p for p in (Path.cwd() / "pwned", Path.home() / "pwned") if p.exists()]
    assert not pwned, f"a user-supplied command ran: {pwned}"
