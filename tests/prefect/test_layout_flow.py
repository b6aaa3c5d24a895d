"""A 2-node x 1-rank cell runs next to a 1 x 2 cell: on the local backend (ranks numbered per node on
this machine, the documented stand-in) and on the real two-node SLURM (``scripts/local-slurm.sh up``)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from flows.matrix import scaling_matrix
from scaling_matrix.adapters.store import ResultsStore
from scaling_matrix.history import series_key
from scaling_matrix.paths import results_url
from tests.prefect.test_slurm_flow import FIX, write_profile
from tests.slurm.conftest import in_ci, slurm_problem

NODES = str(FIX / "matrices" / "nodes.yaml")
ONE_NODE, TWO_NODES = "tiny_llama/data_parallel/lora/g2/tp1-pp1-ep1", "tiny_llama/data_parallel/lora/g2-n2/tp1-pp1-ep1"


def slurm_nodes() -> list[str]:
    """Return the names of the SLURM nodes that are up."""
    out = subprocess.run(["sinfo", "-h", "-N", "-o", "%N %T"], capture_output=True, text=True).stdout
    return sorted({n for n, state in (ln.split() for ln in out.splitlines() if ln.strip())
                   if state.split("+")[0] in ("idle", "mixed", "allocated", "completing")})


@pytest.fixture
def two_nodes() -> None:
    problem = slurm_problem() or (None if len(slurm_nodes()) >= 2 else
                                  "the local SLURM has one node: run `sudo scripts/local-slurm.sh up` (accounting "
                                  "on) for the second slurmd")
    if problem:
        (pytest.fail if in_ci() else pytest.skip)(problem)


@pytest.mark.parametrize("launcher", ["local", pytest.param("slurm", marks=[pytest.mark.slurm, pytest.mark.slow])])
def test_two_node_cell_runs_next_to_a_one_node_cell(launcher: str, scaling_home: Path, tmp_path: Path,
                                                    request: pytest.FixtureRequest) -> None:
    if launcher == "slurm":
        request.getfixturevalue("two_nodes")
    state = scaling_matrix(matrix=NODES, profile=write_profile(tmp_path, launcher), run_id=f"nodes-{launcher}",
                           return_state=True)
    assert state.is_completed(), state.message
    cells = {c["cell_id"]: c for c in ResultsStore(results_url()).cells(f"nodes-{launcher}")}
    assert sorted(cells) == sorted([ONE_NODE, TWO_NODES])
    assert len({series_key(c) for c in cells.values()}) == 2
    for key, (nodes, per_node) in ((ONE_NODE, (1, 2)), (TWO_NODES, (2, 1))):
        cell = cells[key]
        assert cell["status"] == "completed" and (cell["nodes"], cell["devices_per_node"]) == (nodes, per_node)
        summary = json.loads((Path(cell["cell_dir"]) / "nemo_log" / "tiny_summary.json").read_text())
        assert (summary["world_size"], summary["num_nodes"], summary["devices"]) == (2, nodes, per_node)
        assert len(list((Path(cell["cell_dir"]) / "memory").glob("*.csv"))) == 2  # one sampler per rank
    if launcher == "slurm":
        placed = cells[TWO_NODES]["provenance"]["nodelist"]
        assert placed not in slurm_nodes(), f"a 2-node job ran on one node: {placed}"  # e.g. "vm,vm-2"
        script = (Path(cells[TWO_NODES]["cell_dir"]) / "job.sbatch").read_text()
        assert "#SBATCH --nodes=2" in script and "#SBATCH --ntasks-per-node=1" in script
