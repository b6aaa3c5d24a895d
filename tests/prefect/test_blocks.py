"""SlurmCluster blocks round-trip through a real Prefect API, hold a validated profile, and feed runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from blocks.cluster import SlurmCluster, resolve_profile
from deployments.nightly import nightly_deployment
from flows.matrix import scaling_matrix
from scaling_matrix.cells import job_request, plan_cell
from scaling_matrix.config.loading import load_matrix, load_profile
from scaling_matrix.errors import ConfigError
from scaling_matrix.matrix import plan_cells
from scaling_matrix.render.sbatch import render_sbatch
from tests.prefect.test_matrix_flow import QUICK


def test_slurm_cluster_block_roundtrip_renders_scripts() -> None:
    """A block saved with the flat fields of earlier versions still loads, as a validated profile."""
    SlurmCluster(cluster="dgx-a", partition="batch", account="proj", constraint_by_gpus={8: "h100"},
                 container_runtime="pyxis", container_image="nvcr.io#nvidia/nemo:25.07",
                 gpus_per_node=8, capacity_gpus=16, mem="400G").save("dgx-a", overwrite=True)
    block = SlurmCluster.load("dgx-a")
    profile = block.to_profile()
    assert (profile.launcher, profile.workload, profile.device, profile.cluster) == ("slurm", "nemo", "gpu", "dgx-a")
    assert profile.container.env_passthrough == ["HF_TOKEN"] and profile.slurm.poll_interval_s == 30.0
    pc = plan_cells(load_matrix("workshop"), profile)[3]
    script = render_sbatch(job_request(plan_cell("R", pc, profile, python="python3")), profile)
    for line in ["#SBATCH --partition=batch", "#SBATCH --account=proj", "#SBATCH --constraint=h100",
                 "#SBATCH --mem=400G"]:
        assert line in script
    assert "--container-image=nvcr.io#nvidia/nemo:25.07" in script


def test_block_holds_one_profile_and_profile_block_name_loads_it(scaling_home: Path) -> None:
    """The block's only field is a ProfileSpec; ``block:NAME`` is accepted wherever a profile is, the
    nightly deployment included, and a run from it renders the block's settings."""
    assert list(SlurmCluster.model_fields) == ["profile"]
    prof = load_profile("slurm-local").model_copy(update={"name": "lab-b", "cluster": "lab-b"})
    SlurmCluster(profile=prof).save("lab-b", overwrite=True)
    assert resolve_profile("block:lab-b") == prof
    deployment = nightly_deployment(matrix=QUICK, profile="block:lab-b", preflight=True)
    assert deployment.parameters == {"matrix": QUICK, "profile": "block:lab-b", "preflight": True}
    out = scaling_matrix(**deployment.parameters, run_id="from-block", dry_run=True)
    index = json.loads((scaling_home / "runs" / "from-block" / "rendered.json").read_text())
    assert out["cells"] == 2 and index["profile"] == "lab-b"
    assert all("#SBATCH --partition=gpu" in Path(c["script"]).read_text() for c in index["cells"].values())


@pytest.mark.parametrize(("name", "fix"), [("nope-never-saved", "save one"), ("Bad Name", "lower-case")])
def test_profile_block_errors_name_the_option(name: str, fix: str) -> None:
    with pytest.raises(ConfigError) as err:
        resolve_profile(f"block:{name}")
    assert str(err.value).startswith("--profile: ") and fix in str(err.value)


def test_block_refuses_a_local_profile() -> None:
    with pytest.raises(ConfigError, match="launcher: must be 'slurm'"):
        SlurmCluster(profile=load_profile("local"))
