"""Pydantic v2 models for everything a user configures. Pure: no I/O."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from scaling_matrix.config.secrets import SECRET_FIX, SECRET_KEY_NAME
from scaling_matrix.config.types import (
    AbsPath, ArgvPrefix, Bind, Constraint, EnvName, EnvValue, Factory, Flag, Image, JobName, Label, LoraTarget,
    MemSize, ModelKey, ModuleName, Note, SbatchArg, Source, TimeLimit, count, invalid, real, suggest, word,
)
from scaling_matrix.versions import VersionText
from scaling_matrix.layout import Layout

Track = Literal["data_parallel", "model_parallel"]
Peft = Literal["lora", "none"]
#: ``sleep``: a fixed ``sleep <sleep_s>`` per job, to measure orchestration (never training results).
Workload = Literal["nemo", "megatron_bridge", "tiny", "sleep"]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


PresetName = word(r"[a-z0-9][a-z0-9_-]*", "lower-case letters, digits, '_' and '-' (e.g. my-cluster)", 64)
Int = count(1, 1024)
MAX_REPEATS = 10
Steps = count(1, 10_000_000)


class ModelSpec(_Frozen):
    """A base model: which NeMo factory fine-tunes it and where its weights come from."""

    name: ModelKey = Field(description="registry key, e.g. llama31_8b (equal to its key under 'models:')")
    factory: Factory = Field(description="NeMo recipe name passed to --factory / model=")
    family: Literal["dense", "moe"]
    experts: count(0, 1024) = Field(0, description="number of experts (MoE only)")
    source: Source = Field(description="import source: hf://org/repo, tiny://seed/1234, an absolute path, or "
                           "'none' for workload 'sleep' (nothing to import)")
    workload: Workload = Field(description="'nemo' (GPU container; also runs on 'megatron_bridge' profiles), "
                               "'tiny' (embedded CPU engine) or 'sleep' (orchestration benchmark: no training)")
    params_b: real(100_000.0, gt=0) | None = Field(None, description="parameter count in billions")
    gated: Flag = Field(False, description="needs HF_TOKEN to import")

    @model_validator(mode="after")
    def _experts_match_family(self) -> ModelSpec:
        if self.family == "moe" and self.experts < 2:
            raise invalid("family 'moe' needs experts >= 2", "set experts: 8 for Mixtral 8x7B", loc="experts")
        if self.family == "dense" and self.experts:
            raise invalid("family 'dense' has no experts", "remove experts or set family: moe", loc="experts")
        if (self.source == "none") != (self.workload == "sleep"):
            fix = "write source: none" if self.workload == "sleep" else "name the weights to import"
            raise invalid("'none' is the source of workload 'sleep' models only (and theirs)", fix, loc="source")
        return self


class CellSpec(_Frozen):
    """One fine-tuning experiment: a model on a number of GPUs with a parallel layout."""

    model: ModelKey
    track: Track
    gpus: count(1, 4096) = Field(description="total GPUs (= ranks) = nodes x devices")
    nodes: count(1, 512) = Field(1)
    tp: Int = Field(1, description="tensor parallel size")
    pp: Int = Field(1, description="pipeline parallel size")
    cp: Int = Field(1, description="context parallel size")
    ep: Int = Field(1, description="expert parallel size")
    sp: Flag = Field(False, description="sequence parallel")
    vp: count(1, 128) | None = Field(None, description="virtual pipeline size (needs pp > 1)")
    etp: Int | None = Field(None, description="expert tensor parallel size (default: tp)")
    peft: Peft = "lora"
    peft_via: Literal["override", "factory"] = Field(
        "override", description="peft=none as the CLI override 'peft=none' (keeps the LoRA branch's "
        "TP/lr/optimizer: upstream behaviour) or as the factory argument peft_scheme='none' "
        "(NeMo's real full fine-tuning branch)")
    lora_dim: count(1, 65536) | None = None
    lora_alpha: count(1, 65536) | None = None
    lora_targets: list[LoraTarget] | None = Field(None, min_length=1, max_length=64)
    max_steps: Steps = Field(250)
    global_batch_size: count(1, 16_777_216) = Field(8)
    micro_batch_size: count(1, 65536) = Field(1)
    warmup_steps: count(0, 10_000_000) = Field(50)
    limit_val_batches: count(0, 1_000_000) = Field(10)
    val_check_interval: Steps | None = None
    seq_length: count(8, 4_194_304) | None = None
    lr: real(10.0, gt=0) | None = None
    log_every_n_steps: Steps | None = None
    ckpt_every_n_steps: Steps | None = Field(None, description="set above max_steps to skip checkpoints")
    resume_if_exists: Flag = Field(False, description="resume from this cell's own last checkpoint")
    repeat: count(1, 10) = Field(1, description="repeat index; repeats of a cell share one history series")
    job_name: JobName | None = None
    note: Note = Field("", description="free text; control/escape/bidi characters are stored escaped")

    @model_validator(mode="after")
    def _gpus_split_over_nodes(self) -> CellSpec:
        if self.gpus % self.nodes:
            ok = [n for n in range(1, min(self.gpus, 512) + 1) if self.gpus % n == 0]
            raise invalid(f"gpus ({self.gpus}) must be a multiple of nodes ({self.nodes})",
                          f"use nodes in {ok[:8]} or make gpus a multiple of {self.nodes}", loc="nodes")
        if self.lora_targets is not None and len(set(self.lora_targets)) != len(self.lora_targets):
            raise invalid("lists a module twice", "list each module once", loc="lora_targets")
        return self

    @property
    def layout(self) -> Layout:
        """Return the cell's parallel layout: its identity in keys, history, the store and launchers."""
        return Layout(self.nodes, self.gpus // self.nodes, self.tp, self.pp, self.cp, self.ep, self.etp, self.vp,
                      self.sp)

    @property
    def devices(self) -> int:
        """GPUs per node (trainer.devices, = --ntasks-per-node = --gpus-per-node)."""
        return self.layout.devices

    @property
    def dp(self) -> int:
        """Data-parallel size: world / (TP x PP x CP) (EP does not reduce DP)."""
        return self.layout.dp

    @property
    def key(self) -> str:
        """Stable human-readable id, e.g. ``llama31_8b/data_parallel/lora/g4/tp1-pp1-ep1`` (layout: ``Layout.slug``)."""
        rep = f"/r{self.repeat}" if self.repeat > 1 else ""
        return f"{self.model}/{self.track}/{self.peft}/{self.layout.slug()}{rep}"

    @property
    def slug(self) -> str:
        """Filesystem/artifact-safe id: lowercase, digits and dashes only."""
        return re.sub(r"[^a-z0-9]+", "-", self.key.lower()).strip("-")


class MatrixSpec(_Frozen):
    """A named set of cells: explicit ``cells`` plus cartesian ``axes``, over ``defaults``."""

    name: PresetName
    description: Note = ""
    models: dict[ModelKey, ModelSpec] = Field(min_length=1)
    defaults: dict[str, Any] = Field(default_factory=dict)
    repeats: count(1, MAX_REPEATS) = Field(1, description="run every cell this many times per run "
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
            raise invalid("has no cells", "add at least one entry under 'cells' or 'axes'", loc="cells")
        known = set(CellSpec.model_fields) - {"repeat"}
        for where, keys in [("defaults", self.defaults), *((f"axes[{i}]", a) for i, a in enumerate(self.axes))]:
            if unknown := sorted(set(keys) - known):
                raise invalid("is not a cell field", suggest(unknown[0], known), loc=f"{where}.{unknown[0]}")
        for key, model in self.models.items():
            if model.name != key:
                raise invalid(f"'{model.name}' differs from its key '{key}'",
                              f"write name: {key} or drop the name line", loc=f"models.{key}.name")
        return self


class SlurmSettings(_Frozen):
    """Cluster-specific sbatch settings (never constants: see reference/slurm.md §5)."""

    partition: Label | None = None
    account: Label | None = None
    qos: Label | None = None
    reservation: Label | None = None
    constraint: Constraint | None = None
    constraint_by_gpus: dict[count(1, 1024), Constraint] = Field(
        default_factory=dict, description="GPUs-per-node threshold -> constraint, e.g. {4: 'a100,4gpus', 8: 'a100,8gpus'}")
    time_limit: TimeLimit = "01:00:00"
    cpus_per_task: Int = Field(4)
    mem: MemSize | None = None
    extra_sbatch_args: list[SbatchArg] = Field(default_factory=list, max_length=64)
    modules: list[ModuleName] = Field(default_factory=list, max_length=64)
    poll_interval_s: real(3600.0, gt=0) = Field(10.0, description="seconds between the run's status queries "
                                                "(one sacct/squeue for every job of the run)")
    max_jobs_in_flight: count(1, 1_000_000) | None = Field(
        None, description="cells submitted and not yet finished at once; default: every cell as soon as it "
        "is planned (the scheduler decides what runs)")
    preflight: Flag = Field(False, description="always sbatch --test-only every job before submitting any "
                            "(the run is refused, per cell in SLURM's words, if SLURM would refuse one)")


class ContainerSettings(_Frozen):
    """How the workload is wrapped: singularity/apptainer exec, pyxis, or nothing."""

    runtime: Literal["none", "singularity", "apptainer", "pyxis"] = "none"
    image: Image | None = None
    binds: list[Bind] = Field(default_factory=list, max_length=256)
    env_passthrough: list[EnvName] = Field(default_factory=list, max_length=256)

    @model_validator(mode="after")
    def _runtime_needs_image(self) -> ContainerSettings:
        if self.runtime != "none" and not self.image:
            example = "nvcr.io#nvidia/nemo:25.07" if self.runtime == "pyxis" else "/path/to/nemo_25.07.sif"
            raise invalid(f"runtime '{self.runtime}' needs an image", f"set image: {example} or use runtime: none",
                          loc="image")
        return self


class ProfileSpec(_Frozen):
    """Where and how cells run: launcher, workload, capacity, paths and policies."""

    name: PresetName
    description: Note = ""
    launcher: Literal["local", "slurm"]
    workload: Workload
    device: Literal["cpu", "gpu"]
    cluster: Label = Field("local", description="cluster label stored with every result")
    capacity_gpus: count(1, 1_000_000) = Field(description="GPUs (local: rank processes) usable at once")
    gpus_per_node: count(1, 128) = Field(8)
    gpu_memory_gib: real(4096.0, gt=0) | None = None
    executable: ArgvPrefix | None = Field(None, description="argv prefix replacing 'nemo' (Megatron-Bridge: 'python')")
    models_dir: AbsPath | None = Field(None, description="imported checkpoints; default $SCALING_HOME/models")
    model_paths: dict[ModelKey, AbsPath] = Field(default_factory=dict, description="per-model restore path")
    retries: count(0, 10) = Field(2, description="extra attempts for transient failures")
    retry_delay_s: real(3600.0, ge=0) = Field(5.0)
    cell_timeout_s: count(10, 30 * 86400) = Field(3600)
    sleep_s: real(86400.0, ge=0) = Field(10.0, description="workload 'sleep' only: seconds every job sleeps "
                                         "(orchestration benchmarks: no training, no metrics)")
    env: dict[EnvName, EnvValue] = Field(default_factory=dict, max_length=256)
    slurm: SlurmSettings | None = None
    container: ContainerSettings = ContainerSettings()
    nemo_version: VersionText | None = Field(
        None, description="NeMo container (e.g. '25.07') or nemo-toolkit version (e.g. '2.4.1') the cluster "
        "runs; picks the `nemo llm` grammar; default: the newest contracted one (scaling_matrix/versions.py)")
    automodel_version: VersionText | None = Field(
        None, description="nemo-automodel version (e.g. '0.7') for `scaling-matrix automodel`; default: the "
        "newest contracted one")
    megatron_bridge_version: VersionText | None = Field(
        None, description="Megatron-Bridge release in the container (e.g. '0.5' = NeMo Framework 26.06) for "
        "workload 'megatron_bridge'; default: the newest pinned one (scaling_matrix/versions.py)")
    megatron_bridge_root: AbsPath | None = Field(
        None, description="Megatron-Bridge checkout inside the container (default /opt/Megatron-Bridge)")
    gpu_type: Label | None = Field(
        None, description="GPU model, e.g. h100-sxm, a100, h200, b200, gb200 (scaling_matrix/gpus.py): peak FLOPs "
        "for MFU and which published references are comparable")
    peak_tflops: real(100_000.0, gt=0) | None = Field(
        None, description="peak dense BF16 TFLOP/s per GPU; overrides the table for gpu_type")

    @field_validator("env")
    @classmethod
    def _no_secrets_in_env(cls, env: dict[str, str]) -> dict[str, str]:
        for key in env:
            if SECRET_KEY_NAME.search(key):
                raise invalid("is named like a secret", SECRET_FIX, loc=key)
        return env

    @model_validator(mode="after")
    def _slurm_needs_settings(self) -> ProfileSpec:
        if self.launcher == "slurm" and self.slurm is None:
            raise invalid("launcher 'slurm' needs a 'slurm:' section", "add slurm: {partition: ..., time_limit: ...}",
                          loc="slurm")
        if self.workload in ("tiny", "sleep") and self.device != "cpu":
            raise invalid(f"workload '{self.workload}' runs on device 'cpu' only", "set device: cpu", loc="device")
        return self
