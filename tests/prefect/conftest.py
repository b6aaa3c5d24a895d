"""One Prefect test harness (temporary server + SQLite) for every flow test in this folder."""

from __future__ import annotations

import pytest
from prefect.testing.utilities import prefect_test_harness


@pytest.fixture(scope="session", autouse=True)
def prefect_harness():
    """Yield while a temporary Prefect API is running (startup ~13 s, once per session)."""
    with prefect_test_harness(server_startup_timeout=90):
        yield
