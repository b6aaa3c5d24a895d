"""The workshop matrix run end to end with a profile that selects the megatron_bridge workload: real
flow, real local launcher, real store and artifacts; Megatron-Bridge itself replaced by a TEST STAND-IN
(tests/fixtures/bridge_standin.py: it cannot run here) that refuses what the pinned v0.5.0 surface refuses
and prints Megatron-Bridge-format logs with SYNTHETIC timings (cluster label 'bridge-standin')."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml
from prefect.artifacts import Artifact

from flows.matrix import scaling_matrix
from scaling_matrix.adapters.store import ResultsStore
from scaling_matrix.paths import results_url, run_dir

FIX = Path(__file__).resolve().parents[1] / "fixtures"


def test_workshop_on_megatron_bridge_yields_the_workshop_tables(scaling_home: Path, tmp_path: Path) -> None:
    profile = {"name": "bridge-standin", "launcher": "local", "workload": "megatron_bridge", "device": "gpu",
               "cluster": "bridge-standin", "capacity_gpus": 8, "gpus_per_node": 8, "retries": 0,
               "gpu_type": "h100-sxm", "models_dir": str(tmp_path / "models"),
               "executable": [sys.executable, str(FIX / "bridge_standin.py")]}
    path = tmp_path / "bridge.yaml"
    path.write_text(yaml.safe_dump(profile))
    state = scaling_matrix(matrix="workshop", profile=str(path), run_id="bridge-1", skip_unsupported=True,
                           return_state=True)
    assert state.is_completed(), state.message
    cells = ResultsStore(results_url()).cells("bridge-1")
    assert len(cells) == 7 and {c["status"] for c in cells} == {"completed"}  # Mixtral: no 0.5.0 recipe
    assert {c["workload"] for c in cells} == {"megatron_bridge"} and {c["library"] for c in cells} == {"megatron-bridge 0.5.0"}
    assert all(c["last_step"] == 250 and c["peak_mem_mib"] > 0 and c["tokens_per_s_per_gpu"] > 0 for c in cells)
    assert (tmp_path / "models" / "llama31_8b" / "latest_checkpointed_iteration.txt").is_file()  # the import ran
    for track in ("data-parallel", "model-parallel"):
        table = Artifact.get(f"scaling-workshop-llama31-8b-{track}-megatron-bridge-gpu")
        assert table is not None and "Time scaling vs" in json.dumps(table.data) and "MFU" in json.dumps(table.data)
    doc = json.loads((run_dir("bridge-1") / "report" / "result.json").read_text())
    assert doc["run"]["workload"] == "megatron_bridge" and len(doc["cells"]) == 7
    assert all(c["reference"]["verdict"].startswith("no comparable reference") for c in doc["cells"])  # seq 2048
