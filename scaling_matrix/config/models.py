"""Pydantic v2 models for everything a user configures. Pure: no I/O."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from scaling_matrix.versions import VersionText

Track = Literal["data_parallel", "model_parallel"]
Peft = Literal["lora", "none"]
Workload = Literal["nemo", "tiny"]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelSpec(_Frozen):
    """A base model: which NeMo factory fine-tunes it and where its weights come from."""

    name: str = Field(pattern=r"^[a-z0-9_]+$", description="registry key, e.g. llama31_8b")
    factory: str = Field(description="NeMo recipe name passed to --factory / model=")
    family: Literal["dense", "moe"]
    experts: int = Field(0, ge=0, description="number of experts (MoE only)")
    source: str = Field(description="import source, e.g. hf://meta-llama/Llama-3.1-8B or tiny://seed/1234")
    workload: Workload = Field(description="'nemo' (GPU container) or 'tiny' (embedded CPU engine)")
    params_b: float | None = Field(None, gt=0, description="parameter count in billions")
    gated: bool = Field(False, description="needs HF_TOKEN to import")

    @model_validator(mode="after")
    def _experts_match_family(self) -> ModelSpec:
        if self.family == "moe" and self.experts < 2:
            raise ValueError("family 'moe' needs experts >= 2 (set experts: 8 for Mixtral 8x7B)")
        if self.family == "dense" and self.experts:
            raise ValueError("family 'dense' must have experts: 0")
        return self


class CellSpec(_Frozen):
    """One fine-tuning experiment: a model on a number of GPUs with a parallel layout."""

    model: str
    track: Track
    gpus: int = Field(ge=1, le=4096, description="total GPUs (= ranks) = nodes x devices")
    nodes: int = Field(1, ge=1)
    tp: int = Field(1, ge=1, description="tensor parallel size")
    pp: int = Field(1, ge=1, description="pipeline parallel size")
    cp: int = Field(1, ge=1, description="context parallel size")
    ep: int = Field(1, ge=1, description="expert parallel size")
    sp: bool = Field(False, description="sequence parallel")
    vp: int | None = Field(None, ge=1, description="virtual pipeline size (needs pp > 1)")
    etp: int | None = Field(None, ge=1, description="expert tensor parallel size (default: tp)")
    peft: Peft = "lora"
    peft_via: Literal["override", "factory"] = Field(
        "override", description="peft=none as the CLI override 'peft=none' (keeps the LoRA branch's "
        "TP/lr/optimizer: upstream behaviour) or as the factory argument peft_scheme='none' "
        "(NeMo's real full fine-tuning branch)")
    lora_dim: int | None = Field(None, ge=1)
    lora_alpha: int | None = Field(None, ge=1)
    lora_targets: list[str] | None = None
    max_steps: int = Field(250, ge=1)
    global_batch_size: int = Field(8, ge=1)
    micro_batch_size: int = Field(1, ge=1)
    warmup_steps: int = Field(50, ge=0)
    limit_val_batches: int = Field(10, ge=0)
    val_check_interval: int | None = Field(None, ge=1)
    seq_length: int | None = Field(None, ge=8)
    lr: float | None = Field(None, gt=0)
    log_every_n_steps: int | None = Field(None, ge=1)
    ckpt_every_n_steps: int | None = Field(None, ge=1, description="set above max_steps to skip checkpoints")
    resume_if_exists: bool = Field(False, description="resume from this cell's own last checkpoint")
    repeat: int = Field(1, ge=1, description="repeat index; repeats of a cell share one history series")
    job_name: str | None = Field(None, pattern=r"^[A-Za-z0-9._-]+$")
    note: str = ""

    @model_validator(mode="after")
    def _gpus_split_over_nodes(self) -> CellSpec:
        if self.gpus % self.nodes:
            raise ValueError(f"gpus ({self.gpus}) must be a multiple of nodes ({self.nodes})")
        return self

    @property
    def devices(self) -> int:
        """GPUs per node (trainer.devices, = --ntasks-per-node = --gpus-per-node)."""
        return self.gpus // self.nodes

    @property
    def dp(self) -> int:
        """Data-parallel size: world / (TP x PP x CP) (EP does not reduce DP)."""
        return max(1, self.gpus // (self.tp * self.pp * self.cp))

    @property
    def key(self) -> str:
        """Stable human-readable id, e.g. ``llama31_8b/data_parallel/lora/g4/tp1-pp1-ep1``."""
        sp = "-sp" if self.sp else ""
        rep = f"/r{self.repeat}" if self.repeat > 1 else ""
        return (f"{self.model}/{self.track}/{self.peft}/g{self.gpus}"
                f"/tp{self.tp}-pp{self.pp}-ep{self.ep}{sp}{rep}")

    @property
    def slug(self) -> str:
        """Filesystem/artifact-safe id: lowercase, digits and dashes only."""
        return re.sub(r"[^a-z0-9]+", "-", self.key.lower()).strip("-")


class MatrixSpec(_Frozen):
    """A named set of cells: explicit ``cells`` plus cartesian ``axes``, over ``defaults``."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    description: str = ""
    models: dict[str, ModelSpec]
    defaults: dict[str, Any] = Field(default_factory=dict)
    repeats: int = Field(1, ge=1, le=10, description="run every cell this many times per run "
                         "(averaged per night by the regression detector: 2 repeats catch ~75% of 5% "
                         "regressions within 2 nights at 3% noise, 1 repeat ~42%)")
    variant: Literal["faithful", "corrected"] = Field(
        "faithful", description="apply each cell's 'corrected:' overrides (upstream bug fixes) or not")
    axes: list[dict[str, list[Any]]] = Field(default_factory=list)
    cells: list[dict[str, Any]] = Field(default_factory=list)

    @field_validator("models", mode="before")
    @classmethod
    def _name_models(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: ({"name": k, **v} if isinstance(v, dict) and "name" not in v else v)
                    for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _has_cells(self) -> MatrixSpec:
        if not self.axes and not self.cells:
            raise ValueError("a matrix needs at least one entry under 'cells' or 'axes'")
        return self


class SlurmSettings(_Frozen):
    """Cluster-specific sbatch settings (never constants: see reference/slurm.md §5)."""

    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    reservation: str | None = None
    constraint: str | None = None
    constraint_by_gpus: dict[int, str] = Field(
        default_factory=dict, description="GPUs-per-node threshold -> constraint, e.g. {4: 'a100,4gpus', 8: 'a100,8gpus'}")
    time_limit: str = Field("01:00:00", pattern=r"^(\d+-)?\d{1,2}:\d{2}:\d{2}$|^\d+$")
    cpus_per_task: int = Field(4, ge=1)
    mem: str | None = Field(None, pattern=r"^\d+[KMGT]?$")
    extra_sbatch_args: list[str] = Field(default_factory=list)
    modules: list[str] = Field(default_factory=list)
    poll_interval_s: float = Field(10.0, gt=0)


class ContainerSettings(_Frozen):
    """How the workload is wrapped: singularity/apptainer exec, pyxis, or nothing."""

    runtime: Literal["none", "singularity", "apptainer", "pyxis"] = "none"
    image: str | None = None
    binds: list[str] = Field(default_factory=list)
    env_passthrough: list[str] = Field(default_factory=list)


class ProfileSpec(_Frozen):
    """Where and how cells run: launcher, workload, capacity, paths and policies."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    description: str = ""
    launcher: Literal["local", "slurm"]
    workload: Workload
    device: Literal["cpu", "gpu"]
    cluster: str = Field("local", description="cluster label stored with every result")
    capacity_gpus: int = Field(ge=1, description="GPUs (local: rank processes) usable at once")
    gpus_per_node: int = Field(8, ge=1)
    gpu_memory_gib: float | None = Field(None, gt=0)
    executable: list[str] | None = Field(None, description="argv prefix replacing 'nemo'")
    models_dir: str | None = Field(None, description="imported checkpoints; default $SCALING_HOME/models")
    model_paths: dict[str, str] = Field(default_factory=dict, description="per-model restore path")
    retries: int = Field(2, ge=0, le=10, description="extra attempts for transient failures")
    retry_delay_s: float = Field(5.0, ge=0)
    cell_timeout_s: int = Field(3600, ge=10)
    env: dict[str, str] = Field(default_factory=dict)
    slurm: SlurmSettings | None = None
    container: ContainerSettings = ContainerSettings()
    nemo_version: VersionText | None = Field(
        None, description="NeMo container (e.g. '25.07') or nemo-toolkit version (e.g. '2.4.1') the cluster "
        "runs; picks the `nemo llm` grammar; default: the newest contracted one (scaling_matrix/versions.py)")
    automodel_version: VersionText | None = Field(
        None, description="nemo-automodel version (e.g. '0.7') for `scaling-matrix automodel`; default: the "
        "newest contracted one")

    @field_validator("env")
    @classmethod
    def _no_secrets_in_env(cls, env: dict[str, str]) -> dict[str, str]:
        for key in env:
            if re.search(r"TOKEN|PASSWORD|SECRET|API_?KEY", key, re.I):
                raise ValueError(f"{key} looks like a secret: export it in the environment or store it in a "
                                 "Prefect Secret block, never in a profile file")
        return env

    @model_validator(mode="after")
    def _slurm_needs_settings(self) -> ProfileSpec:
        if self.launcher == "slurm" and self.slurm is None:
            raise ValueError("launcher 'slurm' needs a 'slurm:' section (partition, time_limit, ...)")
        if self.workload == "tiny" and self.device != "cpu":
            raise ValueError("workload 'tiny' runs on device 'cpu' only")
        return self
