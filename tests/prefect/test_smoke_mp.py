"""smoke-mp on the local profile: TP/EP/SP cells complete, tables show TP/EP, memory prediction within ±15%."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flows.matrix import scaling_matrix
from scaling_matrix.adapters.runtime_probe import cpu_runtime_baseline_gib
from scaling_matrix.adapters.store import ResultsStore
from scaling_matrix.analysis import scaling_tables
from scaling_matrix.config.loading import load_matrix, load_profile
from scaling_matrix.feasibility import assess
from scaling_matrix.matrix import plan_cells
from scaling_matrix.paths import results_url

pytestmark = pytest.mark.slow


def test_smoke_mp_runs_and_memory_prediction_is_accurate(scaling_home: Path, tmp_path: Path) -> None:
    state = scaling_matrix(matrix="smoke-mp", profile="local", run_id="mp", return_state=True)
    assert state.is_completed(), state.message
    cells = ResultsStore(results_url()).cells("mp")
    assert {(c["model"], c["tp"], c["ep"], c["sp"]) for c in cells} >= {
        ("tiny_llama", 2, 1, False), ("tiny_mixtral", 1, 2, False), ("tiny_mixtral", 2, 2, True)}
    mp_tables = [t for key, t in scaling_tables(cells).items() if key[1] == "model_parallel"]
    assert mp_tables and all({"TP", "EP", "SP"} <= set(t.columns) for t in mp_tables)
    profile = load_profile("local")
    baseline = cpu_runtime_baseline_gib()  # the runtime is measured, not assumed
    assert baseline is not None and 0.1 < baseline < 2.0
    predicted = {a.planned.cell.key: a.prediction.total_gib * 1024
                 for a in assess(plan_cells(load_matrix("smoke-mp"), profile), profile, overhead_gib=baseline)}
    errors = []
    for c in cells:
        measured = c["peak_mem_mib"]
        err = (predicted[c["cell_id"]] - measured) / measured
        errors.append({"cell": c["cell_id"], "predicted_mib": round(predicted[c["cell_id"]], 1),
                       "measured_mib": measured, "error_pct": round(100 * err, 1)})
    (scaling_home / "memory-prediction-errors.json").write_text(json.dumps(errors, indent=1))
    print(json.dumps(errors, indent=1))
    assert all(abs(e["error_pct"]) <= 15 for e in errors), errors
