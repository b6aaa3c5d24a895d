"""The bulk fast path returns, file for file, what the per-line Python parser returns (``parse-log --json``)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scaling_matrix.parsing import bulk, bulk_kernel
from scaling_matrix.parsing.formats import FORMATS, NEMO_RULES
from tests.history.conftest import load_script
from tests.parsing.conftest import FIX

PYTHON = bulk.python_summary  # the reference, before any test wraps it
LINE = ("0: Training epoch {e}, iteration {i}/9 | lr: 1.961e-06 | global_batch_size: 8 | global_step: {s} | "
        "reduced_train_loss: {loss} | train_step_timing in s: {t} | consumed_samples: {c}")
STOP = "INFO:pytorch_lightning.utilities.rank_zero:`Trainer.fit` stopped: `max_steps=10` reached."
OOM = "0: [rank0]: torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB."
NOISE = "1: NCCL INFO Channel 00/01 : 0[0] -> 1[1] via P2P/CUMEM/read"


def _run(steps: range | list[int], **kw: Any) -> list[str]:
    """Return progress lines for ``steps`` (values from ``kw`` override the defaults)."""
    values = {"loss": "2.5", "t": "1.5", "c": "16"} | kw
    return [LINE.format(e=s // 10, i=s % 10, s=s, **values) for s in steps]


def _same(x: Any, y: Any) -> bool:
    """Return True when ``x`` equals ``y`` (floats to 1e-9 relative, types included)."""
    if isinstance(x, float) and isinstance(y, float):
        return x == y or math.isclose(x, y, rel_tol=1e-9)
    if isinstance(x, list) and isinstance(y, list):
        return len(x) == len(y) and all(_same(a, b) for a, b in zip(x, y, strict=True))
    return type(x) is type(y) and x == y


def _assert_equal(paths: list[Path], **kw: Any) -> dict[Any, dict[str, Any]]:
    """Assert that the bulk summaries of ``paths`` equal the Python parser's; return the bulk ones."""
    out = bulk.parse_files_bulk(paths, **kw)
    assert list(out) == paths
    for path in paths:
        ref = PYTHON(path)
        bad = {k: (out[path][k], ref[k]) for k in bulk.FIELDS if not _same(out[path][k], ref[k])}
        assert not bad, f"{path.name}: bulk vs python {bad}"
    return out


def _write(tmp_path: Path, texts: dict[str, str | bytes]) -> list[Path]:
    """Return the paths of ``texts`` written under ``tmp_path`` (str as UTF-8, bytes as they are)."""
    paths = []
    for name, text in texts.items():
        path = tmp_path / name
        path.write_bytes(text.encode() if isinstance(text, str) else text)
        paths.append(path)
    return paths


def _python_calls(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Return the list that records the files sent to the Python parser from now on."""
    calls: list[Any] = []
    monkeypatch.setattr(bulk, "python_summary", lambda p: calls.append(p) or PYTHON(p))
    return calls


def test_fixtures_equal_python() -> None:
    _assert_equal(sorted(FIX.iterdir()))


def test_generated_corpus_equals_python_on_the_kernel_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bench = load_script("parse_bench")
    files, _ = bench.generate(tmp_path, 3, seed=3)  # 17 jobs: two restarts (duplicated steps), one CUDA OOM
    calls = _python_calls(monkeypatch)
    out = _assert_equal(files, batch_bytes=256 << 10, threads=2)  # many batches, some files bigger than one
    assert calls == ([] if bulk.available() else files)
    assert sum(s["failure"] == "oom" for s in out.values()) == 1
    assert sum(s["completed"] for s in out.values()) == len(files) - 1


QUIRKS: dict[str, str | bytes] = {
    "restart_and_negative.log": "\n".join(_run(range(6), t="-0.25") + ["Worker group FAILED"] +
                                          _run(range(3, 10), loss="1.125") + [STOP]) + "\n",
    "key_order_spaces_exponents.log": "\n".join(
        ["p/0 [default0]:Training epoch 0, iteration 0/3 |consumed_samples : 8|  global_step:0 |"
         "train_step_timing in s:  1.5e+01 | reduced_train_loss: 1.249e+03 | val_loss: .5 | lr: 5.",
         "Training epoch 0, iteration 1/3 | global_step: 1.0 | train_step_timing in s: +2 | val_loss: 1e-3",
         "Training epoch 0, iteration 2/3 | global_step: 1e1 | train_step_timing in s: -0 | reduced_train_loss: -7"]),
    "crlf_no_final_newline.log": "\r\n".join(_run(range(10))),
    "bad_values.log": "\n".join(_run(range(4), t="nan", loss="abc", c="inf") + _run(range(4, 8), t="1e400") +
                                ["Training epoch 0, iteration 8/9 | global_step: 1.5 | reduced_train_loss: 1 2"]),
    "no_global_step_epochs.log": "\n".join(f"Training epoch {e}, iteration {i}/4 | train_step_timing in s: 1"
                                           for e in (1, 0, 2) for i in range(5)),
    "unparseable_and_twice.log": "\n".join(["Training epoch 1, iteration 2/", "Training epoch X Training epoch "
                                            "0, iteration 1/2 | global_step: 1", "x Training epoch 0, iteration 0/"
                                            "2 | global_step: 5 Training epoch 0, iteration 1/2 | global_step: 6"]),
    "stop_markers.log": "\n".join(_run(range(3)) + ["`Trainer.fit` stopped: `max_epochs=7` reached",
                                                    "Trainer.fit` stopped: `max_steps=9` reached",
                                                    "`Trainer.fit` stopped: max_steps=9 reached"]),
    "only_noise.log": "hello\n\n\r\n| a | b |\nTraceback (most recent call last):\n",
    "empty.log": "",
    "binary.log": b"\x00\xff\xfe" + "\n".join(_run(range(3))).encode() + b"\n\xc3\x28 NCCL \xff\n",
}
BIG = "\n".join(_run(range(400)) + [NOISE] * 50 + _run(range(400, 700)) + [NOISE, OOM, "checkpoint"])
QUIRKS |= {
    "big_oom.log": BIG + "\n",  # > 64 KiB: only the tail's keyword lines count
    "big_memory_keys.log": "\n".join(line + " | max_memory_reserved: 1.8e+10" for line in _run(range(900))),
    "big_no_newline_in_tail.log": BIG + "\n" + "x" * 70_000,
    "big_many_keyword_lines.log": "\n".join(_run(range(300)) + ["NCCL WARN timed out"] * 300 + [OOM]),
    "fatal_across_lines.log": "\n".join(_run(range(3)) + ["FATAL:   ", "could not open image checkpoint"]),
}


@pytest.mark.parametrize("name", sorted(QUIRKS))
def test_quirks_equal_python(tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = _write(tmp_path, {name: QUIRKS[name]})
    calls = _python_calls(monkeypatch)
    _assert_equal(paths)
    kernel_decides = bulk.available() and name != "bad_values.log"  # its 1e400 is Python's to read (inf)
    assert calls == ([] if kernel_decides else paths)


FALLBACKS = {
    "underscore.log": "\n".join(_run(range(3), t="1_5")),
    "duplicate_deferred_key.log": "\n".join(line + " | consumed_samples: 24" for line in _run(range(3))),
    "long_digits.log": "\n".join(_run(range(3), t="1.2345678901234567890")),
    "automodel_marker.log": "\n".join(_run(range(3)) + ["2026-01-01 00:00:00 | INFO | root | step 3 | epoch 0 | x"]),
    "megatron_marker.log": "\n".join(["0: consumed samples: 8 Training epoch 0, iteration 0/2 | global_step: 0"]),
    "jsonl_head.log": '{"step": 1, "loss": 2.0}\n' + "\n".join(_run(range(3))),
}


def test_undecidable_files_go_to_python(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = _write(tmp_path, FALLBACKS)
    calls = _python_calls(monkeypatch)
    _assert_equal(paths)
    assert sorted(calls) == sorted(paths)


@pytest.mark.timeout(120)
def test_an_unreadable_path_raises_without_hanging(tmp_path: Path) -> None:
    paths = _write(tmp_path, {f"{k}.log": "\n".join(_run(range(10))) for k in range(12)})
    (tmp_path / "dir.log").mkdir()
    with pytest.raises(IsADirectoryError):
        bulk.parse_files_bulk(paths[:6] + [tmp_path / "dir.log"] + paths[6:], batch_bytes=1, threads=2)


def test_without_numba_every_file_goes_to_python(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bulk_kernel, "njit", None)
    paths = _write(tmp_path, {"a.log": "\n".join(_run(range(10)) + [STOP])})
    calls = _python_calls(monkeypatch)
    assert not bulk.available()
    _assert_equal(paths)
    assert calls == paths


def test_kernel_grammar_matches_the_format_table() -> None:
    """The kernel hard-codes these rules; changing them in ``formats`` needs the kernel changed too."""
    step, _, stop = NEMO_RULES
    assert (step.marker, step.anchored, stop.marker) == (b"Training epoch", True, b"Trainer.fit` stopped")
    assert step.regex.pattern == rb"Training epoch (?P<epoch>\d+), iteration (?P<it>\d+)/(?P<n>\d+)"
    assert stop.regex.pattern == rb"`Trainer\.fit` stopped: `\w+=(?P<n>\d+)` reached"
    assert (FORMATS["nemo"].first_step, FORMATS["nemo"].denominator_offset) == (0, 1)


KEYS = ["lr", "global_step", "global_step_x", "train_step_timing in s", "reduced_train_loss", "val_loss",
        "consumed_samples", "consumed samples", "max_memory_allocated", "TFLOPS_per_GPU", "other"]
VALUES = st.one_of(st.integers(-3, 40).map(str), st.floats(-1e6, 1e6).map(lambda f: f"{f:.4}"),
                   st.sampled_from(["", " ", "nan", "inf", "1e", "1.2.3", "+.5", "5.", "-0", "1e-30", " 7 ",
                                    "\t3\r", "NCCL", "x: y", "`Trainer.fit` stopped: `max_steps=3` reached"]))
ITEM = st.builds("{}{}{}".format, st.sampled_from(KEYS), st.sampled_from([": ", ":", " :  "]), VALUES)
PROGRESS = st.builds(lambda pre, e, i, n, items, sep: f"{pre}Training epoch {e}, iteration {i}/{n}" +
                     "".join(sep + x for x in items), st.sampled_from(["", "0: ", "exp/0 [default0]:"]),
                     st.integers(0, 2), st.integers(0, 12), st.integers(0, 12), st.lists(ITEM, max_size=7),
                     st.sampled_from([" | ", "|", " |  "]))
OTHER = st.sampled_from(["", "\r", NOISE, OOM, STOP, "Training epoch 1, iteration 2/", "| x | y |", "FATAL:",
                         "could not open image", "Validation: iteration 1/2", "x" * 90, "caf\u00e9 checkpoint"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(files=st.lists(st.tuples(st.lists(st.one_of(PROGRESS, PROGRESS, OTHER), max_size=25),
                                st.sampled_from([0, 700]), st.booleans()), min_size=1, max_size=3))
def test_fuzzed_logs_equal_python(tmp_path: Path, files: list[tuple[list[str], int, bool]]) -> None:
    texts: dict[str, str | bytes] = {}
    for k, (lines, filler, newline) in enumerate(files):  # filler: 700 lines push the file past 64 KiB
        texts[f"{len(list(tmp_path.iterdir()))}-{k}.log"] = "\n".join(["y" * 99] * filler + lines) + "\n" * newline
    _assert_equal(_write(tmp_path, texts), threads=2)


def test_benchmark_prints_both_rows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    load_script("parse_bench").main(["--size-mb", "1", "--dir", str(tmp_path), "--jobs", "1"])
    out = capsys.readouterr().out
    assert "ratio ours/grep" in out and "python per-line parser" in out and "totals agree with ours" in out
