"""One JSON-ready summary of a parsed log (what ``scaling-matrix parse-log --json`` prints)."""

from __future__ import annotations

import statistics
from dataclasses import asdict
from typing import Any

from scaling_matrix.parsing.model import ParsedLog, ProgressRecord


def _last(steps: list[ProgressRecord], attr: str) -> float | None:
    """Return the value of ``attr`` at the highest step that logged it, else None."""
    for rec in reversed(steps):
        value = getattr(rec, attr)
        if value is not None:
            return float(value)
    return None


def _intish(value: float | None) -> int | float | None:
    """Return integral floats as ints (batch sizes, sample counts), others unchanged."""
    return int(value) if value is not None and value.is_integer() else value


def _bytes(value: float | None) -> int | None:
    """Return a byte count rounded to an int (GiB/MiB-derived values are not whole bytes)."""
    return None if value is None else int(round(value))


def peak_memory(parsed: ParsedLog) -> dict[str, float | None]:
    """Return the peak reserved / allocated bytes logged by the framework and nvidia-smi's peak ``memory.used``
    (``smi_used``); None when not logged. Megatron's peaks are over every rank's memory line."""
    reserved = [r.max_memory_reserved for r in parsed.steps if r.max_memory_reserved is not None]
    allocated = [r.max_memory_allocated for r in parsed.steps if r.max_memory_allocated is not None]
    for key, into in (("max_reserved", reserved), ("reserved", reserved),
                      ("max_allocated", allocated), ("allocated", allocated)):
        if key in parsed.memory_peaks:
            into.append(parsed.memory_peaks[key])
    return {"reserved": max(reserved, default=None), "allocated": max(allocated, default=None),
            "smi_used": parsed.memory_peaks.get("smi_used")}


def restart_rows(parsed: ParsedLog) -> list[dict[str, Any]]:
    """Return the in-job restarts of ``parsed`` as JSON-ready dicts."""
    return [asdict(r) for r in parsed.restarts]


def signature_rows(parsed: ParsedLog) -> list[dict[str, Any]]:
    """Return the failure signatures of ``parsed`` with their level and role (failure / event / benign)."""
    failure = parsed.failure
    rows = []
    for sig in parsed.signatures[:100]:
        role = "benign" if not sig.fatal else "failure" if failure == sig.klass and (
            parsed.last_progress_pos is None or sig.pos > parsed.last_progress_pos) else "event"
        rows.append({"class": sig.klass, "level": sig.level, "line": sig.lineno or None, "role": role,
                     "in_warning": sig.in_warning, "text": sig.line})
    return rows


def log_summary(parsed: ParsedLog) -> dict[str, Any]:
    """Return the summary of ``parsed`` as a JSON-ready dict (``parse-log --json``).

    ``peak_memory_bytes`` is the peak *reserved* memory when logged, else the peak allocated
    (AutoModel logs allocated only); ``tflops_per_gpu_mean`` averages every step that logged it.
    """
    steps = parsed.steps
    mem = peak_memory(parsed)
    tflops = [r.tflops_per_gpu for r in steps if r.tflops_per_gpu is not None]
    return {
        "format": parsed.format,
        "iterations": len(steps),
        "progress_lines": parsed.progress_lines,
        "first_logged_step": parsed.first_logged_step,
        "last_logged_step": parsed.last_logged_step,
        "last_global_step": steps[-1].step if steps else None,
        "max_steps": parsed.max_steps,
        "step_times_s": [r.step_time_s for r in steps],
        "final_train_loss": _last(steps, "train_loss"),
        "last_val_loss": parsed.last_val_loss,
        "last_test_loss": parsed.last_test_loss,
        "mean_logged_step_time_s": parsed.mean_logged_step_time_s,
        "global_batch_size": _intish(_last(steps, "global_batch_size")),
        "consumed_samples": _intish(_last(steps, "consumed_samples")),
        "peak_memory_bytes": _bytes(mem["reserved"] if mem["reserved"] is not None else mem["allocated"]),
        "peak_memory_reserved_bytes": _bytes(mem["reserved"]),
        "peak_memory_allocated_bytes": _bytes(mem["allocated"]),
        "peak_memory_smi_bytes": _bytes(mem["smi_used"]),
        "tflops_per_gpu_mean": statistics.fmean(tflops) if tflops else None,
        "completed": parsed.completed,
        "reached_last_step": parsed.reached_last_step,
        "stopped_at": parsed.stopped_at,
        "failure": parsed.failure,
        "failure_signature": parsed.failure_signature,
        "failure_line": parsed.failure_line,
        "failure_lineno": parsed.failure_lineno,
        "restarts": len(parsed.restarts),
        "restart_time_lost_s": parsed.restart_time_lost_s,
        "restart_events": restart_rows(parsed),
        "signatures": signature_rows(parsed),
        "validation_runs": parsed.validation_runs,
        "job_elapsed_s": parsed.footer.elapsed_s,
        "lines": parsed.lines,
        "problems": list(parsed.problems),
    }


def human_summary(summary: dict[str, Any]) -> str:
    """Return a few readable lines describing ``summary`` (from :func:`log_summary`)."""
    times = [t for t in summary["step_times_s"] if t is not None]
    steady = summary.get("steady_state")
    status = "completed" if summary["completed"] else f"NOT completed (failure: {summary['failure'] or 'none found'})"
    lines = [
        f"format: {summary['format']}   steps: {summary['iterations']}   last step: {summary['last_global_step']}"
        f"   max_steps: {summary['max_steps']}   {status}",
        f"last step time: {times[-1] if times else None} s   steady-state median: "
        + (f"{steady['median_s']:.4g} s (95% CI {steady['ci_low_s']:.4g}-{steady['ci_high_s']:.4g}, "
           f"{steady['warmup_steps']} warm-up steps dropped)" if steady else "n/a"),
        f"final train loss: {summary['final_train_loss']}   last val loss: {summary['last_val_loss']}",
        f"global batch size: {summary['global_batch_size']}   consumed samples: {summary['consumed_samples']}",
        f"peak memory: {summary['peak_memory_bytes']} B   TFLOPS/GPU (mean): {summary['tflops_per_gpu_mean']}",
    ]
    if summary["job_elapsed_s"] is not None:
        lines.append(f"job elapsed: {summary['job_elapsed_s']} s")
    if summary["failure_line"]:
        lines.append(f"failure line {summary.get('failure_lineno') or ''}: {summary['failure_line']}")
    for r in summary.get("restart_events", []):
        lines.append(f"in-job restart at line {r['lineno']}: after step {r['after_step']}, resumed at "
                     f"{r['resumed_at']}, {r['steps_redone']} steps redone, {r['time_lost_s']:.4g} s lost")
    events = [s for s in summary.get("signatures", []) if s["role"] != "failure"]
    if events:
        lines.append(f"signatures not taken as the failure ({len(events)}): " + "; ".join(
            f"{s['class']}/{s['level']}/{s['role']} line {s['line']}" for s in events[:5]))
    problems = summary["problems"]
    if problems:
        lines.append(f"problems ({len(problems)}):")
        lines += [f"  {p}" for p in problems[:20]]
        if len(problems) > 20:
            lines.append(f"  ... {len(problems) - 20} more (see --json)")
    return "\n".join(lines)
