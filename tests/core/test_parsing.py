"""Log and memory parsing on fixtures written from the documented formats (exact numbers)."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scaling_matrix.analysis import cell_metrics
from scaling_matrix.parsing.memory import parse_memory_rows, summarize
from scaling_matrix.parsing.progress import parse_lines, parse_progress_line, parse_text

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "logs"


def test_workshop_example_line() -> None:
    line = ("Training epoch 0, iteration 249/249 | lr: 6.168e-09 | global_batch_size: 8 | global_step: 249 | "
            "reduced_train_loss: 0.1058 | train_step_timing in s: 1.608 | consumed_samples: 2000 | val_loss: 0.194")
    rec = parse_progress_line(line)
    assert rec is not None
    assert (rec.epoch, rec.iteration, rec.max_iteration, rec.step) == (0, 249, 249, 249)
    assert rec.lr == pytest.approx(6.168e-09) and rec.train_loss == pytest.approx(0.1058)
    assert rec.step_time_s == pytest.approx(1.608) and rec.consumed_samples == 2000
    assert rec.val_loss == pytest.approx(0.194) and rec.global_batch_size == 8


def test_field_order_after_resume_and_prefix() -> None:
    line = ("exp/0 [default0]:Training epoch 1, iteration 3/9 | consumed_samples: 104 | lr: 1e-4 | "
            "global_step: 13 | train_step_timing in s: 2.5 | reduced_train_loss: 1.249e+03")
    rec = parse_progress_line(line)
    assert rec is not None and rec.step == 13 and rec.train_loss == pytest.approx(1249.0)
    assert rec.consumed_samples == 104 and rec.step_time_s == 2.5


def test_fixture_log_unique_steps_last_kept() -> None:
    parsed = parse_text((FIX / "nemo_dp_lora.log").read_text())
    assert [s.step for s in parsed.steps] == [0, 1, 2, 3, 4]
    assert parsed.steps[2].train_loss == pytest.approx(1.25)  # duplicate: last occurrence wins
    assert parsed.max_steps == 5 and parsed.stopped_at == 5 and parsed.reached_last_step
    assert any("repeated" in p for p in parsed.problems)


def test_metrics_from_fixture() -> None:
    parsed = parse_text((FIX / "nemo_dp_lora.log").read_text())
    mem = summarize(parse_memory_rows((FIX / "gpu_memory_log.csv").read_text().splitlines()))
    m = cell_metrics(parsed, mem, wall_clock_s=595.0)
    assert m.step_time_s == pytest.approx(1.608)  # the workshop's number: last step
    # median over steps >= 1 with positive timings: 1.612, 1.6, 1.608 (the -0.5 is dropped)
    assert m.median_step_time_s == pytest.approx(statistics.median([1.612, 1.6, 1.608]))
    assert (m.first_loss, m.final_loss, m.last_val_loss) == (pytest.approx(2.153), pytest.approx(0.1058),
                                                             pytest.approx(0.194))
    assert (m.peak_mem_mib, m.mode_mem_mib) == (16273, 1)
    assert m.avg_mem_mib == pytest.approx((1 + 16273 + 1) / 3)
    assert m.all_peak_mem_mib == 17000 and m.wall_clock_s == 595.0


def test_memory_csv_with_units_and_garbage() -> None:
    log = parse_memory_rows(["timestamp, index, name, memory.used [MiB], memory.total [MiB]",
                             "t, 0, gpu, 10 MiB, 80 MiB", "t, x, gpu, 1, 2", "short,row", "t, 0, gpu, 30, 80"])
    s = summarize(log)[0]
    assert (s.peak_mib, s.samples, s.total_mib) == (30, 2, 80)
    assert len(log.problems) == 2


def test_truncated_log_has_no_last_step() -> None:
    text = (FIX / "nemo_dp_lora.log").read_text().split("iteration 3/4")[0]
    parsed = parse_text(text)
    assert not parsed.reached_last_step and parsed.last is not None and parsed.last.step == 2


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.text(), st.binary().map(lambda b: b.decode("latin-1")),
                          st.sampled_from(["Training epoch 0, iteration 1/", "Training epoch x",
                                           "| global_step: nan |", "`Trainer.fit` stopped: `max_steps=",
                                           "Training epoch 0, iteration 1/2 | global_step: 1e400"])),
                max_size=30))
def test_parser_never_crashes_on_garbage(lines: list[str]) -> None:
    parsed = parse_lines(lines)
    assert all(s.step >= 0 for s in parsed.steps)
    assert isinstance(parsed.problems, list)
