"""Preflight on the real SLURM: ``sbatch --test-only`` of every job refuses the unschedulable cell, in
SLURM's own words, before anything is submitted or stored; the schedulable cells pass it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from flows.matrix import scaling_matrix
from scaling_matrix.adapters.runner import SubprocessRunner
from scaling_matrix.adapters.slurm import SlurmClient
from scaling_matrix.backends.slurm import SlurmBackend
from scaling_matrix.config.loading import load_matrix, load_profile
from scaling_matrix.errors import PreflightRejected
from scaling_matrix.planning import plan_run
from scaling_matrix.preflight import preflight
from scaling_matrix.cells import comment_for
from scaling_matrix.matrix import expand
from tests.prefect.test_slurm_flow import FIX, QUICK, need_slurm, write_profile  # noqa: F401 - fixture
from tests.slurm.conftest import cluster_capped_by_qos

UNSCHEDULABLE = str(FIX / "matrices" / "unschedulable.yaml")
BAD_CELL = "tiny_llama/data_parallel/lora/g3-n3/tp1-pp1-ep1"
CLI = str(Path(sys.executable).parent / "scaling-matrix")


@pytest.mark.slurm
def test_profile_requiring_preflight_refuses_the_run_before_anything_is_submitted(need_slurm: None,
                                                                                  scaling_home: Path,
                                                                                  tmp_path: Path) -> None:
    profile = write_profile(tmp_path, "slurm", slurm={"partition": "gpu", "cpus_per_task": 1, "preflight": True})
    state = scaling_matrix(matrix=UNSCHEDULABLE, profile=profile, run_id="preflight", return_state=True)
    assert state.is_failed()
    with pytest.raises(PreflightRejected) as err:
        state.result()
    lines = str(err.value).splitlines()
    assert lines[0].startswith(f"preflight: cell {BAD_CELL}: sbatch --test-only refused it: ")
    refusal = "QOSGrpCpuLimit" if cluster_capped_by_qos() else "Requested node configuration is not available"
    assert refusal in lines[0]  # SLURM's words, per cell (3 nodes: more nodes, or cores, than the cluster has)
    assert len(lines) == 2 and "1 of 4 jobs would be refused; nothing was submitted" in lines[1]
    assert not (scaling_home / "results.db").exists()  # no run stored
    client = SlurmClient(SubprocessRunner())  # and no job of it ever reached the scheduler
    assert [client.find_by_comment(comment_for("preflight", pc.cell.key, 1))
            for pc in expand(load_matrix(UNSCHEDULABLE))] == [None] * 3
    script = scaling_home / "runs" / "preflight" / "tiny-llama-data-parallel-lora-g3-n3-tp1-pp1-ep1" / "job.sbatch"
    assert "#SBATCH --nodes=3" in script.read_text()  # the script SLURM judged is there to read


@pytest.mark.slurm
def test_schedulable_cells_pass_preflight(need_slurm: None, scaling_home: Path, tmp_path: Path) -> None:
    """Negative control: the same cells without the 3-node one all fit."""
    run = plan_run(load_matrix(QUICK), load_profile(write_profile(tmp_path, "slurm")), "fits")
    verdicts = preflight(run, SlurmBackend(SlurmClient(SubprocessRunner())))
    assert [v.fits for v in verdicts] == [True] * 3, verdicts
    assert all("to start at" in v.message for v in verdicts)


@pytest.mark.slurm
def test_cli_preflight_prints_one_line_per_refused_cell(need_slurm: None, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update(SCALING_HOME=str(tmp_path / "home"), PREFECT_HOME=str(tmp_path / "prefect"))
    res = subprocess.run([CLI, "run", "--matrix", UNSCHEDULABLE, "--profile", write_profile(tmp_path, "slurm"),
                          "--preflight"], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 2, res.stdout[-2000:] + res.stderr[-2000:]
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error: ")]
    assert errors[0].startswith(f"error: preflight: cell {BAD_CELL}: sbatch --test-only refused it: ")
    assert "(fix: change the cell" in errors[0] and "Traceback" not in res.stderr
    assert not (tmp_path / "home" / "results.db").exists()


def test_preflight_needs_a_slurm_profile(tmp_path: Path) -> None:
    state = scaling_matrix(matrix=QUICK, profile=write_profile(tmp_path, "local"), preflight=True, return_state=True)
    with pytest.raises(Exception, match="--preflight: profile 'test-local' does not submit to SLURM"):
        state.result()
