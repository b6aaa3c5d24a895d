"""The genuine Megatron-Bridge logs (21-, 22-) through the path a megatron_bridge cell takes: the
cell evaluation of the flow (parser tables → outcome → metrics → labels), not only the parser."""

from __future__ import annotations

from pathlib import Path

import pytest

from scaling_matrix.backends.base import RunEnd
from scaling_matrix.cells import evaluate, plan_cell
from scaling_matrix.config.loading import load_matrix, load_profile
from scaling_matrix.efficiency import efficiency
from scaling_matrix.matrix import plan_cells
from scaling_matrix.parsing.memory import MemoryLog
from scaling_matrix.parsing.progress import parse_text
from scaling_matrix.records import CellMetrics, CellStatus
from scaling_matrix.slurm.states import SlurmState
from scaling_matrix.slurm.status import JobStatus

BRIDGE = load_profile("megatron-bridge")


def bridge_plan(job: str):
    pc = next(p for p in plan_cells(load_matrix("workshop"), BRIDGE, skip_unsupported=True) if p.cell.job_name == job)
    return plan_cell("RUN", pc, BRIDGE)


def evaluate_log(text: str, returncode: int | None, wall_s: float | None, plan) -> tuple[bool, CellMetrics]:
    """Judge ``text`` as the log of a SLURM job that ended with ``returncode`` (None: no scheduler record)."""
    state = None if returncode is None else JobStatus("1", SlurmState.COMPLETED if returncode == 0 else
                                                      SlurmState.FAILED, returncode, 0, wall_s, source="sacct")
    end = RunEnd((), Path("/nonexistent/memory"), returncode, wall_clock_s=wall_s, scheduler=state)
    result = evaluate(plan, 1, end, text, MemoryLog())
    return result.status is CellStatus.COMPLETED, result.metrics


def test_resume_log_evaluates_as_a_completed_bridge_cell(real_logs: Path, scaling_home: Path) -> None:
    text = (real_logs / "21-megatron-bridge-resume-one-iteration.log").read_text()
    ok, m = evaluate_log(text, 0, 30.0, bridge_plan("l-lo-8g"))
    assert ok and m.last_step == 1 and m.final_loss == pytest.approx(12.58695)
    assert m.step_time_s == pytest.approx(20.2891)
    assert parse_text(text).memory_peaks["max_allocated"] == pytest.approx(194.41e9)  # mem-max-allocated-gigabytes
    assert (m.gpu_type, m.precision, m.library, m.seq_length) == ("h100-sxm", "bf16", "megatron-bridge 0.5.0", 2048)
    assert m.lora_dim == 32 and m.lora_targets == ["linear_qkv", "linear_proj", "linear_fc1", "linear_fc2"]


def test_mtp_fragment_keeps_lm_loss_not_the_other_losses(real_logs: Path, scaling_home: Path) -> None:
    text = (real_logs / "22-megatron-bridge-mtp-extra-loss-fields.log").read_text()
    ok, m = evaluate_log(text, None, None, bridge_plan("l-mp-2g"))
    assert m.final_loss == pytest.approx(7.968678) and m.step_time_s == pytest.approx(3.7386)
    assert not ok  # a one-line fragment without an end marker is not a completed run
    row = {**vars(m), "model": "llama31_8b", "peft": "none", "device": "gpu", "tokens_per_s_per_gpu": 1000.0}
    assert efficiency(row)["mfu"] == pytest.approx(1000.0 * efficiency(row)["flops_per_token"] / 1e12 / 989.4)
