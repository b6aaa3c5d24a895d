"""``SlurmCluster`` block: a real cluster's settings, turned into a Prefect-free profile."""

from __future__ import annotations

from typing import Literal

from prefect.blocks.core import Block
from pydantic import Field, ValidationError

from scaling_matrix.config.messages import config_error
from scaling_matrix.config.models import ContainerSettings, ProfileSpec, SlurmSettings
from scaling_matrix.config.secrets import shown


class SlurmCluster(Block):
    """Where and how cells run on a SLURM cluster (no secrets here: HF_TOKEN comes from env/Secret)."""

    _block_type_slug = "slurm-cluster"
    _description = "SLURM cluster settings for scaling-matrix (partition, account, container, ...)."

    cluster: str = Field(description="cluster label stored with every result, e.g. 'ibex'")
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    reservation: str | None = None
    constraint: str | None = None
    constraint_by_gpus: dict[int, str] = Field(default_factory=dict)
    time_limit: str = "01:00:00"
    cpus_per_task: int = 4
    mem: str | None = None
    gpus_per_node: int = 8
    gpu_memory_gib: float | None = 80
    capacity_gpus: int = Field(64, description="GPUs this benchmark may hold at once")
    extra_sbatch_args: list[str] = Field(default_factory=list)
    modules: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict, description="non-secret exports, e.g. cache dirs")
    models_dir: str | None = None
    model_paths: dict[str, str] = Field(default_factory=dict)
    container_runtime: Literal["none", "singularity", "apptainer", "pyxis"] = "singularity"
    container_image: str | None = None
    container_binds: list[str] = Field(default_factory=list)
    env_passthrough: list[str] = Field(default_factory=lambda: ["HF_TOKEN"])
    poll_interval_s: float = 30.0
    retries: int = 2

    def to_profile(self, name: str | None = None, workload: Literal["nemo", "tiny"] = "nemo") -> ProfileSpec:
        """Return the validated :class:`ProfileSpec` these settings describe (ConfigError naming the
        block's field otherwise, never its value)."""
        try:
            return self._profile(name, workload)
        except ValidationError as exc:
            raise config_error(exc, f"slurm-cluster block {shown(self.cluster)}") from None

    def _profile(self, name: str | None, workload: Literal["nemo", "tiny"]) -> ProfileSpec:
        slurm = SlurmSettings(partition=self.partition, account=self.account, qos=self.qos,
                              reservation=self.reservation, constraint=self.constraint,
                              constraint_by_gpus=self.constraint_by_gpus, time_limit=self.time_limit,
                              cpus_per_task=self.cpus_per_task, mem=self.mem,
                              extra_sbatch_args=self.extra_sbatch_args, modules=self.modules,
                              poll_interval_s=self.poll_interval_s)
        container = ContainerSettings(runtime=self.container_runtime, image=self.container_image,
                                      binds=self.container_binds, env_passthrough=self.env_passthrough)
        return ProfileSpec(name=name or self.cluster, launcher="slurm", workload=workload,
                           device="gpu" if workload == "nemo" else "cpu", cluster=self.cluster,
                           capacity_gpus=self.capacity_gpus, gpus_per_node=self.gpus_per_node,
                           gpu_memory_gib=self.gpu_memory_gib, models_dir=self.models_dir,
                           model_paths=self.model_paths, retries=self.retries, env=self.env,
                           slurm=slurm, container=container)
