"""The machine-readable result of one run: a versioned JSON document (schema ``result-schema-1.json``,
documented in ``docs/result-schema.md``). Pure: built from the stored run and cell rows.

One document per run: ``run`` (identity, status, who, when), ``provenance`` (container digest, driver,
git revision, …), ``conventions`` (units, FLOP convention, yardstick threshold, reference-data version),
``cells`` (each with ``layout``, ``batch``, ``metrics``, ``scaling``, ``provenance`` and ``reference``)
and ``references`` (every published point a cell was compared with). Written as
``runs/<run-id>/report/result.json`` by the ``analyze`` flow and printed by ``report --format json``.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scaling_matrix.analysis import add_scaling
from scaling_matrix.efficiency import efficiency, reference_fields
from scaling_matrix.flops import DEFAULT_CONVENTION, FlopConvention
from scaling_matrix.yardstick import DEFAULT_THRESHOLD, METRIC, Reference, compare_cell, load_references

SCHEMA_VERSION = 1
SCHEMA_ID = "scaling-matrix/result/1"
SCHEMA_FILE = Path(__file__).parent / "data" / f"result-schema-{SCHEMA_VERSION}.json"
RUN_FIELDS = ("run_id", "matrix", "profile", "cluster", "workload", "device", "status", "user", "git_rev",
              "created_at", "finished_at", "flow_run_id")
METRIC_FIELDS = ("steps_logged", "last_step", "max_steps", "reached_last_step", "step_time_s", "median_step_time_s",
                 "mean_step_time_s", "steady_median_step_time_s", "p10_step_time_s", "p90_step_time_s",
                 "ci95_low_step_time_s", "ci95_high_step_time_s", "warmup_steps", "steady_first_step",
                 "wall_clock_s", "first_loss", "final_loss", "last_val_loss", "peak_mem_mib", "avg_mem_mib",
                 "mode_mem_mib", "all_peak_mem_mib", "samples_per_s", "samples_per_s_per_gpu", "tokens_per_s",
                 "tokens_per_s_per_gpu", "gpu_hours", "restarts", "restart_time_lost_s")
EFFICIENCY_FIELDS = ("flops_per_token", "model_tflops_per_gpu", "mfu", "peak_tflops_per_gpu")
SCALING_FIELDS = ("baseline_gpus", "time_scaling", "mem_scaling", "speedup", "parallel_efficiency")


def _json(value: Any) -> Any:
    """Return ``value`` as JSON data: NaN/inf → None, datetimes → ISO 8601, numpy scalars → Python."""
    if value is None:
        return None
    if hasattr(value, "item") and not isinstance(value, (list, dict, str)):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    if isinstance(value, dict):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json(v) for v in value]
    try:
        if value != value:  # pandas NA / NaN-like
            return None
    except (TypeError, ValueError):
        return None
    return value


def layout_of(row: dict[str, Any]) -> dict[str, Any]:
    """Return the parallel layout of a cell row (the one place it is built; issue 14's ``Layout`` value
    replaces the body at merge time): nodes, devices per node, TP/PP/CP/EP/ETP/VP, SP, DP, world."""
    config = row.get("config_json") or {}
    nodes, world = int(row.get("nodes") or 1), int(row["gpus"])
    tp, pp, cp = int(row.get("tp") or 1), int(row.get("pp") or 1), int(row.get("cp") or 1)
    return {"nodes": nodes, "devices_per_node": world // nodes, "tp": tp, "pp": pp, "cp": cp,
            "ep": int(row.get("ep") or 1), "etp": config.get("etp"), "vp": config.get("vp"),
            "sp": bool(row.get("sp")), "dp": int(row.get("dp") or max(1, world // (tp * pp * cp))), "world": world}


def reference_of(row: dict[str, Any], refs: tuple[Reference, ...], threshold: float) -> dict[str, Any]:
    """Return the ``reference`` object of one cell: the published point, ours, ratio, verdict."""
    c = compare_cell(row, refs, threshold)
    fields = reference_fields(c.reference)
    return {"id": fields["reference_id"], "source": fields["reference_source"], "url": fields["reference_url"],
            "container": fields["reference_container"], "metric": METRIC,
            "value": fields["reference_tokens_per_s_per_gpu"], "ours": c.value, "ratio": c.ratio,
            "below_threshold": c.below if c.reference else None, "verdict": c.verdict, "caveats": list(c.caveats)}


def cell_object(row: dict[str, Any], refs: tuple[Reference, ...], convention: FlopConvention,
                threshold: float) -> dict[str, Any]:
    """Return one ``cells[]`` entry of the document."""
    eff = efficiency(row, convention)
    metrics = {k: row.get(k) for k in METRIC_FIELDS}
    metrics.update({k: eff[k] for k in EFFICIENCY_FIELDS}, logged_tflops_per_gpu=row.get("tflops_per_gpu"))
    return {
        "cell_id": row["cell_id"], "model": row["model"], "track": row["track"],
        "method": "lora" if row.get("peft") == "lora" else "sft", "status": row["status"],
        "failure_class": row.get("failure_class"), "reason": row.get("reason") or "",
        "attempts": row.get("attempts"), "job_id": row.get("job_id"), "workload": row.get("workload"),
        "device": row.get("device"), "cluster": row.get("cluster"), "gpu_type": row.get("gpu_type"),
        "precision": row.get("precision"), "library": row.get("library"), "recipe": row.get("recipe"),
        "layout": layout_of(row),
        "batch": {"global": row.get("global_batch_size"), "micro": row.get("micro_batch_size"),
                  "per_gpu": row.get("batch_per_gpu"), "seq_length": row.get("seq_length")},
        "metrics": metrics, "scaling": {k: row.get(k) for k in SCALING_FIELDS},
        "provenance": row.get("provenance") or {}, "reference": reference_of(row, refs, threshold),
    }


def result_document(run: dict[str, Any], cells: list[dict[str, Any]],
                    convention: FlopConvention = DEFAULT_CONVENTION, threshold: float = DEFAULT_THRESHOLD,
                    refs: tuple[Reference, ...] | None = None, now: datetime | None = None) -> dict[str, Any]:
    """Return the result document of ``run`` (a stored run row) and its stored ``cells``."""
    version, loaded = load_references()
    refs = loaded if refs is None else refs
    frame = add_scaling(cells)
    rows = frame.to_dict("records") if not frame.empty else []
    objects = [cell_object(r, refs, convention, threshold) for r in rows]
    used = {o["reference"]["id"] for o in objects if o["reference"]["id"]}
    return _json({
        "schema": SCHEMA_ID, "schema_version": SCHEMA_VERSION,
        "generated_at": now or datetime.now(UTC), "generator": {"name": "scaling-matrix", "version": _version()},
        "run": {k: run.get(k) for k in RUN_FIELDS}, "provenance": run.get("provenance") or {},
        "conventions": {"time_unit": "s", "memory_unit": "MiB", "throughput_metric": METRIC,
                        "flops": {"attention": convention.attention, "lora": convention.lora,
                                  "formula": "scaling_matrix/flops.py (docs/result-schema.md)"},
                        "yardstick_threshold": threshold, "references_version": version,
                        "precision_rendered": "bf16"},
        "cells": objects,
        "references": [_reference_entry(r) for r in refs if r.id in used],
    })


def _reference_entry(ref: Reference) -> dict[str, Any]:
    return {k: getattr(ref, k) for k in ("id", "source", "url", "container", "workload", "gpu_type", "gpus",
                                         "model", "model_name", "method", "parallel", "micro_batch_size",
                                         "global_batch_size", "seq_length", "precision", "data",
                                         "tokens_per_s_per_gpu", "tflops_per_gpu", "mfu", "derived",
                                         "convention")}


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("scaling-matrix")
    except PackageNotFoundError:
        return "unknown"


def render_document(doc: dict[str, Any]) -> str:
    """Return the document as pretty JSON text (no NaN: strict JSON)."""
    return json.dumps(doc, indent=1, allow_nan=False)
