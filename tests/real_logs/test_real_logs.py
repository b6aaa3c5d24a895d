"""The real-log tier: 27 genuine public logs (NeMo 2, BioNeMo, AutoModel, Megatron-LM/-DeepSpeed/-Bridge,
NeMo 1, nvidia-smi CSV) parsed by ``parse-log`` and checked, file by file, against ``expected.json``
(computed by the corpus's own ``compute_expected.py``, not by this project).

Format names differ only in spelling (``nemo2`` is our ``nemo``); ``completed: null`` (no end marker,
no failure: a fragment) means "not confirmed complete, no failure"; peak memory is compared in bytes
with the unit each source prints (Megatron-LM ``MB`` is MiB, Megatron-Bridge ``GB`` is 1e9 B:
shared/reference/memory-measurements.md) against the quantity the source measures.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from scaling_matrix.cli import app
from scaling_matrix.parsing import bulk
from scaling_matrix.parsing.progress import parse_file
from scaling_matrix.parsing.summary import log_summary
from tests.real_logs.conftest import load_expected

EXPECTED = load_expected()
NAMES = sorted(EXPECTED) or ["corpus-absent"]
FORMAT = {"nemo2": "nemo", "nemo1_tqdm": "nemo1", "automodel_new": "automodel", "automodel_old": "automodel",
          "megatron": "megatron", "nvidia_smi_csv": "nvidia_smi_csv", "none": "unknown"}
UNIT_BYTES = {"B": 1.0, "MB": 2.0**20, "MiB": 2.0**20, "GB": 1e9, "GiB": 2.0**30}
#: what each expected source measures -> our summary field
MEMORY_FIELD = {"peak_memory_usage": "peak_memory_reserved_bytes",  # NeMo: torch.cuda.max_memory_reserved()
                "Megatron [Rank N] max allocated": "peak_memory_allocated_bytes",
                "Megatron-Bridge mem-max-allocated-gigabytes": "peak_memory_allocated_bytes",
                "AutoModel mem": "peak_memory_allocated_bytes",
                "nvidia-smi memory.used": "peak_memory_smi_bytes"}
MEMORY_FIELDS = sorted(set(MEMORY_FIELD.values()))
#: INDEX.md, file 15: "iteration 94768 appears 7 times" (seven resumes; six visible as the log going back)
RESTARTS = {"15-megatron-deepspeed-176b-resume-repeated-steps.log": 6}


def _close(ours: float | None, theirs: float | None, tol: float = 1e-9) -> bool:
    if ours is None or theirs is None:
        return ours is None and theirs is None
    return math.isclose(ours, theirs, rel_tol=tol, abs_tol=1e-6)


@pytest.fixture(scope="module")
def summaries(real_logs: Path) -> dict[str, dict[str, Any]]:
    return {name: log_summary(parse_file(real_logs / name)) for name in EXPECTED}


def test_the_corpus_is_complete(real_logs: Path) -> None:
    assert len(EXPECTED) == 27 and all((real_logs / name).is_file() for name in EXPECTED)
    assert sum(e["failure"] != "none" for e in EXPECTED.values()) == 7


@pytest.mark.parametrize("name", NAMES)
def test_steps_losses_and_times(summaries: dict[str, dict[str, Any]], name: str) -> None:
    exp, ours = EXPECTED[name], summaries[name]
    assert ours["format"] == FORMAT[exp["format"]]
    got = (ours["progress_lines"], ours["iterations"], ours["first_logged_step"], ours["last_logged_step"],
           ours["last_global_step"])
    assert got == (exp["progress_lines"], exp["unique_steps"], exp["first_step"], exp["last_step"], exp["max_step"])
    assert _close(ours["final_train_loss"], exp["final_train_loss"])
    assert _close(ours["mean_logged_step_time_s"], exp["mean_step_time_s"], tol=1e-6)  # expected: 6 decimals
    assert _close(ours["last_val_loss"], exp["last_val_loss"])
    assert _close(ours["last_test_loss"], exp["last_test_loss"])


@pytest.mark.parametrize("name", NAMES)
def test_peak_memory(summaries: dict[str, dict[str, Any]], name: str) -> None:
    exp, ours = EXPECTED[name]["peak_memory"], summaries[name]
    if exp is None:
        assert all(ours[f] is None for f in MEMORY_FIELDS)
        return
    field = MEMORY_FIELD[exp["source"]]
    assert ours[field] is not None and abs(ours[field] - exp["value"] * UNIT_BYTES[exp["unit"]]) <= 1.0


@pytest.mark.parametrize("name", NAMES)
def test_completion_failure_and_restarts(summaries: dict[str, dict[str, Any]], name: str) -> None:
    exp, ours = EXPECTED[name], summaries[name]
    assert (ours["failure"] or "none") == exp["failure"]
    assert ours["failure_lineno"] == exp["failure_line"]
    assert ours["completed"] is (exp["completed"] is True)
    assert ours["restarts"] == RESTARTS.get(name, 0)
    if exp["progress_lines"] == exp["unique_steps"]:
        assert ours["restart_events"] == []


def test_no_false_failures_and_every_failure_right(summaries: dict[str, dict[str, Any]]) -> None:
    ok = [n for n, e in EXPECTED.items() if e["failure"] == "none"]
    assert [n for n in ok if summaries[n]["failure"]] == []
    assert {n: summaries[n]["failure"] for n in EXPECTED if n not in ok} == \
        {n: e["failure"] for n, e in EXPECTED.items() if n not in ok}


def test_restart_events_of_the_resume_log(summaries: dict[str, dict[str, Any]]) -> None:
    events = summaries["15-megatron-deepspeed-176b-resume-repeated-steps.log"]["restart_events"]
    assert [e["resumed_at"] for e in events] == [94768] * 6
    assert all(e["time_lost_s"] > 100 for e in events)  # each threw away >= one ~200 s iteration


def test_bulk_scanner_returns_the_same_verdicts(real_logs: Path) -> None:
    paths = [real_logs / name for name in EXPECTED]
    out = bulk.parse_files_bulk(paths, threads=2)
    for path in paths:
        ref = bulk.python_summary(path)
        assert {k: out[path][k] for k in bulk.FIELDS} == ref, path.name


@pytest.mark.parametrize("name", ["02-bionemo-evo2-finetune-benign-warnings.log",
                                  "16-megatron-deepspeed-13b-ecc-crash.log"])
def test_parse_log_cli_prints_the_same(real_logs: Path, summaries: dict[str, dict[str, Any]], name: str) -> None:
    result = CliRunner().invoke(app, ["parse-log", "--json", str(real_logs / name)])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    assert {k: printed[k] for k in ("completed", "failure", "restarts", "last_val_loss")} == \
        {k: summaries[name][k] for k in ("completed", "failure", "restarts", "last_val_loss")}
