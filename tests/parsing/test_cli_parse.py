"""``scaling-matrix parse-log`` through the real typer app."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from scaling_matrix.cli import app
from tests.parsing.conftest import FIX

runner = CliRunner()
KEYS = {"format", "iterations", "last_global_step", "max_steps", "step_times_s", "final_train_loss", "last_val_loss",
        "global_batch_size", "consumed_samples", "peak_memory_bytes", "tflops_per_gpu_mean", "completed", "failure",
        "problems"}


def test_parse_log_json() -> None:
    result = runner.invoke(app, ["parse-log", str(FIX / "nemo_quirks.log"), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert KEYS <= out.keys()
    assert out["format"] == "nemo" and out["iterations"] == 6 and out["last_global_step"] == 5
    assert out["max_steps"] == 6 and out["step_times_s"] == [12.5, 1.5, -0.25, 1.375, 1.25, 1.5]
    assert out["completed"] is True and out["failure"] is None and len(out["problems"]) == 4
    assert out["steady_state"]["warmup_steps"] == 1 and out["steady_state"]["median_s"] == 1.4375


def test_parse_log_format_option_and_failure() -> None:
    result = runner.invoke(app, ["parse-log", str(FIX / "oom.log"), "--format", "nemo", "--json"])
    out = json.loads(result.output)
    assert out["failure"] == "oom" and out["completed"] is False and out["peak_memory_bytes"] is None


def test_parse_log_human_summary() -> None:
    result = runner.invoke(app, ["parse-log", str(FIX / "megatron.log")])
    assert result.exit_code == 0
    assert "format: megatron" in result.output and "completed" in result.output


def test_parse_log_missing_file_and_bad_format(tmp_path) -> None:
    result = runner.invoke(app, ["parse-log", str(tmp_path / "nope.log")])
    assert result.exit_code == 2
    result = runner.invoke(app, ["parse-log", str(FIX / "oom.log"), "--format", "bogus"])
    assert result.exit_code == 2


def test_scan_logs_json_lines_match_parse_log(tmp_path) -> None:
    result = runner.invoke(app, ["scan-logs", str(FIX), "--json", "--threads", "2"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert sorted(Path(o["path"]).name for o in lines) == sorted(p.name for p in FIX.glob("*.log"))
    for out in lines:  # each agrees with parse-log on the fields both print
        full = json.loads(runner.invoke(app, ["parse-log", out["path"], "--json"]).output)
        assert {k: full[k] for k in out if k in full} == {k: v for k, v in out.items() if k in full}
    oom = next(o for o in lines if o["path"].endswith("oom.log"))
    assert oom["failure"] == "oom" and oom["completed"] is False


def test_scan_logs_human_totals_and_bad_path(tmp_path) -> None:
    result = runner.invoke(app, ["scan-logs", str(FIX / "nemo_quirks.log"), str(FIX / "oom.log")])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("2 logs,") and "completed: 1" in result.output and "'oom': 1" in result.output
    result = runner.invoke(app, ["scan-logs", str(tmp_path / "missing")])
    assert result.exit_code == 2 and "no such file or directory" in result.output
