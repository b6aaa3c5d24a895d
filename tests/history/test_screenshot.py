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


def test_yardstick_artifact_shows_reference_value_and_ratio(prefect_server: PrefectServer,  # noqa: F811
                                                            chromium: str, tmp_path: Path) -> None:
    """A seeded store of SYNTHETIC GPU-labelled cells (cluster 'seeded-synthetic', user 'seeded-test-data'):
    the yardstick table on the triggered flow run, rendered by chromium, shows ours, published, ratio and
    verdict, and 'no comparable reference' for the A100 and Megatron-Bridge cells."""
    import html

    out = tmp_path / "yardstick.png"
    env = {k: v for k, v in prefect_server.env.items() if k not in ("SCALING_DB_URL", "SCALING_DB_BLOCK")}
    res = subprocess.run([sys.executable, str(REPO / "scripts" / "screenshot_artifacts.py"), "--api-url",
                          prefect_server.api_url, "--workdir", str(tmp_path / "work"), "--out", str(out),
                          "--chromium", chromium, "--scenario", "yardstick"],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=400)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "artifact yardstick-workshop: http://127.0.0.1:" in res.stdout
    assert out.read_bytes().startswith(b"\x89PNG\r\n\x1a\n") and out.stat().st_size > 30_000
    text = html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", out.with_suffix(".html").read_text())))
    row = re.search(r"lora/g8/tp1-pp1-ep1 h100-sxm 16500 17809 92\.6% below 95% dgxc-v25\.02-llama3-8b-lora-bf16-8", text)
    assert row, text[:3000]
    assert "none/g8/tp1-pp1-ep1 h100-sxm 12300 12412 99.1% ok" in text
    assert "a100 2900 no comparable reference (nearest dgxc-v25.02-llama3-8b-lora-bf16-8: GPU a100 vs h100-sxm)" in text
    assert "workload megatron_bridge vs nemo" in text
