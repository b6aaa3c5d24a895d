"""Exact NeMo log strings: ProgressPrinter numbers, progress lines, logger prefix, lr schedule, memory rows."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import pytest

from scaling_matrix.tiny.memory import CSV_HEADER, MemorySampler, format_memory_row, memory_settings
from scaling_matrix.tiny.progress import (
    format_fit_stopped,
    format_nemo_log,
    format_number,
    format_progress_line,
    lr_at_step,
)


@pytest.mark.parametrize(
    ("value", "text"),
    [(8.0, "8"), (8, "8"), (2000.0, "2000"), (1.961e-06, "1.961e-06"), (0.10583, "0.1058"),
     (1249.3, "1.249e+03"), (1.6081, "1.608"), (0.0, "0"), (-0.5, "-0.5")],
)
def test_format_number_like_progress_printer(value: float, text: str) -> None:
    assert format_number(value) == text


def test_nemo_reference_line_reproduced() -> None:
    lr = lr_at_step(249, max_lr=1e-4, min_lr=0.0, warmup_steps=50, max_steps=250)
    line = format_progress_line(epoch=0, iteration=249, max_steps=250, lr=lr, global_batch_size=8, global_step=249,
                                reduced_train_loss=0.10583, train_step_timing=1.6081, consumed_samples=2000,
                                val_loss=0.19401)
    assert line == ("Training epoch 0, iteration 249/249 | lr: 6.168e-09 | global_batch_size: 8 | global_step: 249 | "
                    "reduced_train_loss: 0.1058 | train_step_timing in s: 1.608 | consumed_samples: 2000 | "
                    "val_loss: 0.194")


def test_first_step_has_no_consumed_samples_nor_val_loss() -> None:
    line = format_progress_line(epoch=0, iteration=0, max_steps=40, lr=0.0005, global_batch_size=8, global_step=0,
                                reduced_train_loss=6.0, train_step_timing=0.25)
    assert line == ("Training epoch 0, iteration 0/39 | lr: 0.0005 | global_batch_size: 8 | global_step: 0 | "
                    "reduced_train_loss: 6 | train_step_timing in s: 0.25")


def test_lr_schedule_warmup_then_cosine() -> None:
    kw = {"max_lr": 1e-3, "min_lr": 1e-5, "warmup_steps": 4, "max_steps": 20}
    assert lr_at_step(0, **kw) == pytest.approx(2e-4)
    assert lr_at_step(3, **kw) == pytest.approx(8e-4)
    assert lr_at_step(4, **kw) == pytest.approx(1e-3)
    assert lr_at_step(12, **kw) == pytest.approx((1e-3 + 1e-5) / 2)
    assert lr_at_step(20, **kw) == pytest.approx(1e-5)
    assert lr_at_step(0, max_lr=1e-3, min_lr=0.0, warmup_steps=0, max_steps=1) == pytest.approx(1e-3)


def test_other_lines() -> None:
    assert format_fit_stopped(40) == "`Trainer.fit` stopped: `max_steps=40` reached."
    when = datetime(2026, 11, 22, 20, 40, 1, 123456)
    assert format_nemo_log("Experiments will be logged at /x", now=when) == (
        "[NeMo I 2026-11-22 20:40:01 tiny:1] Experiments will be logged at /x")


def test_memory_csv_format() -> None:
    assert CSV_HEADER == "timestamp, index, name, memory.used [MiB], memory.total [MiB]"
    row = format_memory_row(datetime(2026, 11, 22, 20, 40, 1, 123456), 0, 512, 23958)
    assert row == "2026/11/22 20:40:01.123, 0, cpu-rss (tiny workload), 512, 23958"


def test_memory_settings_from_env(tmp_path: Path) -> None:
    assert memory_settings(tmp_path, {}) == (tmp_path / "memory", 0.5)
    assert memory_settings(tmp_path, {"SCALING_MEMORY_DIR": "/m", "SCALING_MEMORY_INTERVAL_S": "2"}) == (
        Path("/m"), 2.0)
    with pytest.raises(ValueError, match="SCALING_MEMORY_INTERVAL_S"):
        memory_settings(tmp_path, {"SCALING_MEMORY_INTERVAL_S": "0"})


def test_memory_sampler_writes_start_periodic_and_end_rows(tmp_path: Path) -> None:
    sampler = MemorySampler(tmp_path / "mem", rank=3, interval_s=0.05).start()
    time.sleep(0.3)
    sampler.stop()
    sampler.stop()
    rows = (tmp_path / "mem" / "memory_rank3.csv").read_text().splitlines()
    assert rows[0] == CSV_HEADER and len(rows) >= 4
    assert all(row.split(", ")[1:3] == ["3", "cpu-rss (tiny workload)"] for row in rows[1:])
