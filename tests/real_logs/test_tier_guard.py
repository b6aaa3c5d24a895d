"""The real-log tier never passes vacuously: without the corpus it skips locally and fails under CI=true."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


@pytest.mark.parametrize(("ci", "code", "word"), [("true", 1, "1 error"), ("", 0, "1 skipped")])
def test_missing_corpus(tmp_path: Path, ci: str, code: int, word: str) -> None:
    env = {**os.environ, "SCALING_REAL_LOGS": str(tmp_path / "nowhere"), "CI": ci}
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          str(HERE / "test_real_logs.py::test_the_corpus_is_complete")],
                         env=env, capture_output=True, text=True, timeout=120, cwd=HERE.parents[1])
    assert out.returncode == code, out.stdout + out.stderr
    assert word in out.stdout and "real-log corpus not found" in out.stdout
