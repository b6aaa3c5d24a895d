"""The hostile-input corpus through the real CLI (RELIABILITY.md, section "Hostile input").

Every case runs in-process through the real typer app; a representative sample also runs as a real
subprocess of the installed ``scaling-matrix`` console script. The invariants are in ``harness.check``.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

from tests.hostile.cases_parsing import MESSAGES, PARSING
from tests.hostile.cases_safety import DATA_SAFETY, SECRETS_CASES
from tests.hostile.cases_values import ACCEPT, CONSOLE, VALUES
from tests.hostile.harness import Case, Sandbox, check, run_in_process, run_subprocess

CORPUS: list[Case] = DATA_SAFETY + SECRETS_CASES + PARSING + VALUES + CONSOLE + MESSAGES + ACCEPT
BY_NAME = {c.name: c for c in CORPUS}
#: one or more per input class, through the installed console script
SUBPROCESS_SAMPLE = ["import-target-is-a-user-folder", "resume-climbs-out-of-scaling-home",
                     "automodel-out-is-an-existing-file", "env-value-hugging-face-token", "alias-bomb",
                     "latin-1-bytes", "partition-command-substitution", "gpus-boolean", "unknown-key-with-markup",
                     "global-batch-not-divisible", "path-with-command-substitution", "note-with-ansi-escape"]


def test_corpus_is_large_unique_and_covers_every_class() -> None:
    assert len(BY_NAME) == len(CORPUS), "duplicate case names"
    rejected = [c for c in CORPUS if c.expect == "reject"]
    assert len(rejected) >= 100 and len(CORPUS) - len(rejected) >= 10
    classes = Counter(c.klass for c in rejected)
    assert set(classes) == {"data safety", "secrets", "YAML parsing", "value types", "console", "messages"}
    assert set(SUBPROCESS_SAMPLE) <= set(BY_NAME)
    assert {BY_NAME[n].klass for n in SUBPROCESS_SAMPLE} == set(classes)


def case_id(case: Case) -> str:
    """Return the test id ``<class>:<expect>:<name>`` (select a class with ``-k value_types:accept``)."""
    return f"{case.klass.replace(' ', '_').lower()}:{case.expect}:{case.name}"


@pytest.mark.parametrize("case", CORPUS, ids=case_id)
def test_in_process(case: Case, tmp_path: Path) -> None:
    box = Sandbox(tmp_path)
    started = time.perf_counter()
    res = run_in_process(box, case)
    check(case, box, res)
    assert time.perf_counter() - started < 20, "rejecting or planning took too long"


@pytest.mark.parametrize("case", [BY_NAME[n] for n in SUBPROCESS_SAMPLE], ids=case_id)
def test_console_script(case: Case, tmp_path: Path) -> None:
    box = Sandbox(tmp_path)
    check(case, box, run_subprocess(box, case))
