"""Plain result records passed from the pure core to the store and reports (no ORM here)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from scaling_matrix.config.models import CellSpec, ModelSpec, ProfileSpec


class CellStatus(StrEnum):
    """Status of one cell of one run, as stored (a ``str``: rows and reports read it as text)."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"

    @property
    def final(self) -> bool:
        """Return True when the cell will produce no more results in this run."""
        return self not in (CellStatus.PENDING, CellStatus.RUNNING)

    @property
    def ok(self) -> bool:
        """Return True for the statuses that do not fail a run (completed, skipped)."""
        return self in (CellStatus.COMPLETED, CellStatus.SKIPPED)


class RunStatus(StrEnum):
    """Status of one run, as stored; ``running`` until it ends."""

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    CRASHED = "crashed"


@dataclass(frozen=True)
class StoredCell:
    """A cell row as the run logic reads it back from the store (typed; reports use flat rows)."""

    cell_id: str
    status: CellStatus
    failure_class: str | None = None
    reason: str = ""
    attempts: int = 0
    job_id: str | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> StoredCell:
        """Return the typed view of one stored cell row."""
        return cls(str(row["cell_id"]), CellStatus(row["status"]), row.get("failure_class"),
                   str(row.get("reason") or ""), int(row.get("attempts") or 0),
                   None if row.get("job_id") is None else str(row["job_id"]))


@dataclass(frozen=True)
class StoredAttempt:
    """One job-ledger row: an attempt of a cell, its job id (SLURM) and status."""

    cell_id: str
    attempt: int
    status: str
    job_id: str | None = None
    failure_class: str | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> StoredAttempt:
        """Return the typed view of one attempt row."""
        return cls(str(row["cell_id"]), int(row["attempt"]), str(row["status"]),
                   None if row.get("job_id") is None else str(row["job_id"]), row.get("failure_class"))


@dataclass
class CellMetrics:
    """Metrics of one finished cell, in the workshop's terms (time in s, memory in MiB)."""

    steps_logged: int = 0
    last_step: int | None = None
    max_steps: int | None = None
    reached_last_step: bool = False
    first_loss: float | None = None
    final_loss: float | None = None
    last_val_loss: float | None = None
    step_time_s: float | None = None  # the workshop's number: the last step's timing
    median_step_time_s: float | None = None  # over steps >= 1 (step 0 is warm-up)
    mean_step_time_s: float | None = None
    wall_clock_s: float | None = None
    peak_mem_mib: float | None = None  # GPU/rank 0
    avg_mem_mib: float | None = None
    mode_mem_mib: float | None = None
    all_peak_mem_mib: float | None = None  # max over every GPU/rank
    # steady state (scaling_matrix.metrics: window detected automatically, not a fixed skip-N)
    warmup_steps: int | None = None  # valid timings dropped before the steady-state window
    steady_first_step: int | None = None
    steady_steps: int | None = None
    steady_median_step_time_s: float | None = None
    p10_step_time_s: float | None = None
    p90_step_time_s: float | None = None
    ci95_low_step_time_s: float | None = None  # order-statistic 95% CI of the median
    ci95_high_step_time_s: float | None = None
    steady_mean_step_time_s: float | None = None
    samples_per_s: float | None = None  # GBS / steady median step time
    samples_per_s_per_gpu: float | None = None
    tokens_per_s: float | None = None  # GBS x seq_length / steady median step time (None if seq_length unknown)
    tokens_per_s_per_gpu: float | None = None
    tflops_per_gpu: float | None = None  # mean over the window, when logged
    log_span_s: float | None = None  # last - first step timestamp (formats that log them)
    train_time_s: float | None = None  # sum of positive step times
    gpu_hours: float | None = None  # gpus x wall clock / 3600
    # in-job restarts (scaling_matrix.parsing.restarts): count, step time thrown away, one dict per restart
    restarts: int = 0
    restart_time_lost_s: float | None = None
    restart_events: list[dict[str, Any]] = field(default_factory=list)
    # what the cell ran, for efficiency and the published yardstick (scaling_matrix.flops, .yardstick);
    # stored in the metrics JSON (no column): set by cells.label_metrics from the plan, None on old rows
    seq_length: int | None = None  # effective sequence length (explicit, else the recipe default)
    recipe: str | None = None  # architecture key (recipes.RECIPES), e.g. llama31_8b
    library: str | None = None  # e.g. "megatron-bridge 0.5.0", "nemo-toolkit 2.4.1", "tiny engine"
    gpu_type: str | None = None  # profile gpu_type (None: CPU or not stated)
    precision: str | None = None  # bf16 for every rendered recipe (gpus.PRECISION); None on CPU
    peak_tflops: float | None = None  # per GPU at `precision` (profile override or gpus.PEAK_TFLOPS)
    lora_dim: int | None = None  # effective LoRA rank (explicit, else the workload's recipe default)
    lora_targets: list[str] | None = None


@dataclass
class CellResult:
    """Everything stored about one cell of one run."""

    run_id: str
    cell: CellSpec
    model: ModelSpec
    workload: str
    device: str
    cluster: str
    status: CellStatus = CellStatus.PENDING
    failure_class: str | None = None
    reason: str = ""
    attempts: int = 0
    exit_code: int | None = None
    job_id: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    cell_dir: str | None = None
    command: str | None = None
    metrics: CellMetrics = field(default_factory=CellMetrics)

    def __post_init__(self) -> None:
        self.status = CellStatus(self.status)  # rows written as text ("completed") are typed here

    def flat(self) -> dict[str, Any]:
        """Return a flat dict of config, status, labels and metrics (one report row)."""
        c = self.cell
        row: dict[str, Any] = {
            "run_id": self.run_id, "cell_id": c.key, "model": c.model, "track": c.track, **c.layout.columns(),
            "peft": c.peft, "global_batch_size": c.global_batch_size,
            "micro_batch_size": c.micro_batch_size, "status": str(self.status),
            "failure_class": self.failure_class, "reason": self.reason, "attempts": self.attempts,
            "exit_code": self.exit_code, "job_id": self.job_id, "workload": self.workload,
            "device": self.device, "cluster": self.cluster,
        }
        row.update(asdict(self.metrics))
        return row


@dataclass(frozen=True)
class RunInfo:
    """One orchestrated run of a matrix on a profile."""

    run_id: str
    matrix: str
    profile: ProfileSpec
    user: str
    git_rev: str | None
    created_at: datetime
