"""Series, provenance diffs, alerts and their markdown; the history modules stay pure."""

from __future__ import annotations

import ast
import json
import pickle
import random
from pathlib import Path

import pytest

from scaling_matrix.layout import Layout
from scaling_matrix.history import (DEFAULT_METRICS, METRIC_DIRECTIONS, UNKNOWN, RegressionDetected,
                                    SeriesKey, build_series, detect_regressions, provenance_diff,
                                    render_alerts_markdown, series_key, with_scaling)
from tests.history.conftest import REPO, row


def nightly(nights: int, last: float, gpus: tuple[int, ...] = (1, 2, 4, 8), seed: int = 3) -> list[dict]:
    """Return ``nights`` nights of rows for ``gpus`` cells; the last night of g4 is x ``last``."""
    rng = random.Random(seed)
    rows = []
    for n in range(nights):
        for g in gpus:
            slow = last if n == nights - 1 and g == 4 else 1.0
            prov = {"git_rev": "abc" if n < nights - 1 else "def", "container_image": "nemo_25.07.sif",
                    "nodelist": ["gpu1", "gpu2"], "cluster": "ibex"}
            rows.append(row(n, 1.6 / g * slow * rng.lognormvariate(0, 0.02), gpus=g, provenance=prov))
    return rows


def test_series_key_and_label() -> None:
    key = series_key(row(0, 1.0, gpus=4))
    assert key == SeriesKey("llama31_8b", "data_parallel", "lora", Layout(1, 4), "nemo", "gpu", "ibex")
    assert key.label() == "llama31_8b/data_parallel/lora/g4/tp1-pp1-ep1 @ ibex (nemo/gpu)"


def test_build_series_sorts_by_time_and_skips_missing_values() -> None:
    rows = [row(2, 1.2), row(0, 1.0), row(1, None), row(3, float("nan")), row(4, 1.1, cluster="other")]
    series = build_series(rows, "median_step_time_s")
    assert len(series) == 2
    ibex = next(v for k, v in series.items() if k.cluster == "ibex")
    assert [p.run_id for p in ibex] == ["n00", "n02"] and [p.value for p in ibex] == [1.0, 1.2]


def test_provenance_diff_marks_changes_and_unknowns() -> None:
    diff = {c.field: c for c in provenance_diff({"git_rev": "a", "nodelist": ["n1", "n2"], "extra": 1},
                                                {"git_rev": "b", "nodelist": ("n1", "n2")})}
    assert diff["git_rev"].changed and (diff["git_rev"].before, diff["git_rev"].after) == ("a", "b")
    assert not diff["nodelist"].changed and diff["nodelist"].after == "n1,n2"
    assert diff["nemo_version"].before == UNKNOWN and not diff["nemo_version"].changed
    assert diff["extra"].after == UNKNOWN and diff["extra"].changed
    assert list(diff)[:3] == ["container_image", "container_digest", "nemo_version"]


def test_detect_regressions_flags_only_the_slowed_cell_with_what_changed() -> None:
    rows = with_scaling(nightly(12, last=1.12))
    alerts = detect_regressions(rows, "n11")
    cells = {(a.metric, a.key.gpus) for a in alerts}
    assert ("median_step_time_s", 4) in cells and all(g == 4 for _, g in cells)
    a = next(a for a in alerts if a.metric == "median_step_time_s")
    assert a.rule == "1-night" and a.baseline_run_id == "n10" and a.change_pct == pytest.approx(12, abs=5)
    assert [c.field for c in a.changes if c.changed] == ["git_rev"]
    json.dumps(a.as_dict())  # JSON-ready
    assert "git_rev abc→def" in a.summary()


def test_detect_regressions_ignores_later_runs_and_short_histories() -> None:
    rows = nightly(12, last=1.12)
    assert detect_regressions(rows, "n05") == []  # judged as of night 5, before the slowdown
    assert detect_regressions(nightly(5, last=2.0), "n04") == []  # not enough history
    assert detect_regressions(rows, "missing") == []


def test_with_scaling_adds_time_scaling_and_efficiency_per_run() -> None:
    rows = with_scaling(nightly(2, last=1.0, gpus=(1, 2)))
    by = {(r["run_id"], r["gpus"]): r for r in rows}
    r = by[("n01", 2)]
    assert r["time_scaling"] == pytest.approx(by[("n01", 1)]["wall_clock_s"] / r["wall_clock_s"])
    assert r["efficiency"] == pytest.approx(r["time_scaling"] / 2) and by[("n00", 1)]["time_scaling"] == 1.0


def test_markdown_groups_identical_diffs_and_error_carries_alerts() -> None:
    alerts = detect_regressions(with_scaling(nightly(12, last=1.15)), "n11")
    md = render_alerts_markdown(alerts, "n11", "workshop")
    assert md.startswith("# Regressions — run n11 (workshop)")
    assert md.count("## What changed") == 1 and "| **git_rev** (changed) | abc | **def** |" in md
    err = RegressionDetected("n11", alerts, "regressions-workshop")
    assert err.alerts == alerts and "regressions-workshop" in str(err) and f"{len(alerts)} regression" in str(err)
    again = pickle.loads(pickle.dumps(err))  # Prefect may persist a failed state's exception
    assert again.alerts == alerts and str(again) == str(err)


def test_default_metrics_have_directions() -> None:
    assert set(DEFAULT_METRICS) <= set(METRIC_DIRECTIONS)
    assert METRIC_DIRECTIONS["median_step_time_s"] == "lower" and METRIC_DIRECTIONS["time_scaling"] == "higher"


@pytest.mark.parametrize("module", ["history.py", "detector.py", "plots.py"])
def test_history_modules_are_pure(module: str) -> None:
    tree = ast.parse((REPO / "scaling_matrix" / module).read_text())
    names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    bad = {n for n in names if n.split(".")[0] in ("prefect", "sqlalchemy", "subprocess", "flows", "tasks",
                                                   "blocks") or n.startswith("scaling_matrix.adapters")}
    assert not bad


def test_modules_i_own_are_small() -> None:
    files = ["scaling_matrix/history.py", "scaling_matrix/detector.py", "scaling_matrix/plots.py",
             "scaling_matrix/cli_history.py", "scaling_matrix/adapters/store.py", "scaling_matrix/adapters/schema.py",
             "flows/analyze.py", "tasks/artifacts.py", "blocks/results_db.py"]
    sizes = {f: len((REPO / f).read_text().splitlines()) for f in files}
    assert all(n <= 300 for n in sizes.values()), sizes
    assert Path(REPO / "scaling_matrix/migrations/versions").is_dir()


def test_repeats_are_averaged_per_night() -> None:
    """Two repeats of a cell in one run form one nightly point (their mean)."""
    from scaling_matrix.config.loading import load_matrix
    from scaling_matrix.history import build_series
    from scaling_matrix.matrix import expand

    cells = expand(load_matrix("smoke").model_copy(update={"repeats": 2}))
    assert [pc.cell.repeat for pc in cells] == [1, 2, 1, 2]
    rows = [row(0, 1.0), {**row(0, 3.0), "cell_id": "x/r2"}, row(1, 2.0)]
    (points,) = build_series(rows, "median_step_time_s").values()
    assert [p.value for p in points] == [2.0, 2.0]
