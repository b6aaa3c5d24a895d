"""Blocks round-trip through a real Prefect API and produce Prefect-free config."""

from __future__ import annotations

from blocks.cluster import SlurmCluster
from scaling_matrix.cells import job_request, plan_cell
from scaling_matrix.config.loading import load_matrix
from scaling_matrix.matrix import plan_cells
from scaling_matrix.render.sbatch import render_sbatch


def test_slurm_cluster_block_roundtrip_renders_scripts() -> None:
    SlurmCluster(cluster="dgx-a", partition="batch", account="proj", constraint_by_gpus={8: "h100"},
                 container_runtime="pyxis", container_image="nvcr.io#nvidia/nemo:25.07",
                 gpus_per_node=8, capacity_gpus=16, mem="400G").save("dgx-a", overwrite=True)
    block = SlurmCluster.load("dgx-a")
    profile = block.to_profile()
    assert (profile.launcher, profile.workload, profile.device, profile.cluster) == ("slurm", "nemo", "gpu", "dgx-a")
    pc = plan_cells(load_matrix("workshop"), profile)[3]
    script = render_sbatch(job_request(plan_cell("R", pc, profile, python="python3")), profile)
    for line in ["#SBATCH --partition=batch", "#SBATCH --account=proj", "#SBATCH --constraint=h100",
                 "#SBATCH --mem=400G"]:
        assert line in script
    assert "--container-image=nvcr.io#nvidia/nemo:25.07" in script
