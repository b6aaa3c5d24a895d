"""Where the genuine public logs are: ``$SCALING_REAL_LOGS``, default ``<repo>/../shared/real-logs``.

CI places the repository beside ``shared/``; the logs are read there and never copied into the repo.
Absent, the tier skips with a message saying where it looked, except under ``CI=true``, where a
missing corpus fails the run (a tier that silently ran nothing would pass vacuously).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
REAL_LOGS = Path(os.environ.get("SCALING_REAL_LOGS", REPO.parent / "shared" / "real-logs"))


def load_expected() -> dict[str, dict[str, Any]]:
    """Return ``expected.json`` of the corpus ({} when the folder is absent)."""
    path = REAL_LOGS / "expected.json"
    return json.loads(path.read_text()) if path.is_file() else {}


@pytest.fixture(scope="session")
def real_logs() -> Path:
    """Return the corpus folder; skip (fail under CI=true) when it is absent."""
    if not (REAL_LOGS / "expected.json").is_file():
        message = (f"real-log corpus not found at {REAL_LOGS} (expected.json missing): set SCALING_REAL_LOGS "
                   "or place shared/real-logs beside the repository")
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return REAL_LOGS
