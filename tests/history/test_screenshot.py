"""Plots in the Prefect UI, checked as a person would: headless chromium screenshots the artifact page."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.history.conftest import REPO
from tests.server.conftest import PrefectServer, prefect_server  # noqa: F401 - fixture

pytestmark = [pytest.mark.server, pytest.mark.slow]


@pytest.fixture
def chromium() -> str:
    """Return the chromium binary; skip without one (fail when CI=true)."""
    path = shutil.which("chromium")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium missing under CI=true (apt-get install -y chromium)")
        pytest.skip("chromium not installed (apt-get install -y chromium)")
    return path


def test_plots_artifact_screenshot_shows_the_plots(prefect_server: PrefectServer,  # noqa: F811
                                                    chromium: str, tmp_path: Path) -> None:
    out = tmp_path / "plots.png"
    env = {k: v for k, v in prefect_server.env.items() if k not in ("SCALING_DB_URL", "SCALING_DB_BLOCK")}
    res = subprocess.run([sys.executable, str(REPO / "scripts" / "screenshot_artifacts.py"), "--api-url",
                          prefect_server.api_url, "--workdir", str(tmp_path / "work"), "--out", str(out),
                          "--chromium", chromium], cwd=REPO, env=env, capture_output=True, text=True, timeout=400)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "artifact plots-workshop: http://127.0.0.1:" in res.stdout
    assert re.search(r"run night-10: [1-9]\d* alert\(s\)", res.stdout), res.stdout
    data = out.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(data) > 30_000, f"screenshot only {len(data)} bytes: the page did not render"
    assert white_fraction(out) > 0.08, "no plot-sized white areas: the images did not render in the dark UI"


def white_fraction(png: Path) -> float:
    """Return the fraction of near-white pixels (the plots' backgrounds; the Prefect UI is dark)."""
    from PIL import Image

    with Image.open(png) as im:
        small = im.convert("L").resize((350, 450))
        hist = small.histogram()
    return sum(hist[236:]) / (350 * 450)
