"""Suite-wide fixtures: an isolated $SCALING_HOME and quiet, isolated Prefect settings."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Isolate Prefect before anything imports it (reference/prefect.md §11).
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
os.environ.setdefault("PREFECT_LOGGING_TO_API_ENABLED", "false")


@pytest.fixture
def scaling_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Return a fresh $SCALING_HOME for one test."""
    home = tmp_path / "scaling-home"
    monkeypatch.setenv("SCALING_HOME", str(home))
    monkeypatch.delenv("SCALING_DB_URL", raising=False)
    return home


def golden(name: str, text: str) -> None:
    """Compare ``text`` with ``tests/golden/<name>``; regenerate with UPDATE_GOLDEN=1."""
    path = REPO / "tests" / "golden" / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.is_file(), f"missing golden file {path}; run with UPDATE_GOLDEN=1 to create it"
    expected = path.read_text()
    if text != expected:
        import difflib

        diff = "".join(difflib.unified_diff(expected.splitlines(True), text.splitlines(True),
                                            "golden", "rendered"))
        pytest.fail(f"{name} differs from golden (UPDATE_GOLDEN=1 to accept):\n{diff}")
