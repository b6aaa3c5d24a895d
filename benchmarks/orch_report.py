"""Numbers and the table of ``benchmarks/orchestration.py``: per-way metrics, ratios against raw.

Definitions (every time is wall-clock on this host; job ends come from ``sacct``, whole seconds):
  makespan      start of the orchestrator -> the last job's end known (ours: its cell stored)
  wall          start -> the orchestrator's process exited (ours: after analysis and the report)
  start-up      start -> the first ``sbatch`` (ours: the ledger row written just before it)
  submit all    start -> the last ``sbatch``
  detection     a job's end in ``sacct`` -> its end known / cell stored (mean; median, p90 also kept)
  per-cell overhead  extra submission time per cell + extra mean detection latency, both against raw
                     (poll phase: both poll at the same interval, so it cancels out in the means; the
                     standard error of the difference is reported beside it)
  RPCs          slurmctld (``sdiag``) and slurmdbd (``sacctmgr show stats``) deltas, less the snapshots'
                own; ``client`` leaves out what every job sends by itself (step, end, accounting).
                Cluster-wide: other people's commands meanwhile are in them too
  own commands  the way's own SLURM client commands (logging wrappers first on PATH; not the commands a job script runs), immune to others;
                one squeue asks slurmctld for job (and partition) info, one sacct is one slurmdbd query
"""

from __future__ import annotations

import statistics
from typing import Any

from orch_ways import Trial


def _q(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def metrics(trial: Trial, ends: dict[str, float], sleep_s: float, interval_s: float) -> dict[str, Any]:
    """Return the measured numbers of one trial (``ends``: job id -> end from sacct)."""
    sub = sorted(trial.submitted.values())
    lat = [trial.detected[j] - ends[j] for j in trial.detected if j in ends]
    rpcs = trial.rpcs.summary()
    return {
        "way": trial.way, "n": trial.n, "sleep_s": sleep_s, "interval_s": interval_s, "workload": "sleep",
        "ok": trial.ok, "note": trial.note,
        "makespan_s": max(trial.detected.values(), default=float("nan")) - trial.t0,
        "wall_s": trial.t_exit - trial.t0,
        "startup_s": sub[0] - trial.t0 if sub else float("nan"),
        "pickup_s": trial.pickup_s,  # deployment only: part of start-up, Prefect's worker poll interval
        "submit_all_s": sub[-1] - trial.t0 if sub else float("nan"),
        "submit_per_cell_ms": 1000 * (sub[-1] - sub[0]) / max(1, len(sub) - 1) if sub else float("nan"),
        "detect_mean_s": statistics.fmean(lat) if lat else float("nan"),
        "detect_median_s": statistics.median(lat) if lat else float("nan"),
        "detect_p90_s": _q(lat, 0.9), "detect_max_s": max(lat, default=float("nan")),
        "detect_sd_s": statistics.stdev(lat) if len(lat) > 1 else float("nan"), "detected": len(lat),
        "commands": trial.commands, "commands_total": sum(trial.commands.values()),
        "polls": trial.commands.get("squeue", 0) + trial.commands.get("sacct", 0),
        **{f"rpc_{k}": v for k, v in rpcs.items()}, "rpc_by_type": {**trial.rpcs.ctld, **trial.rpcs.dbd},
    }


def with_ratios(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return ``rows`` with ratios and the per-cell overhead against the raw row of the same size."""
    raw = {r["n"]: r for r in rows if r["way"] == "raw"}
    for r in rows:
        base = raw.get(r["n"])
        if base is None:
            continue
        for key in ("makespan_s", "wall_s", "rpc_ctld", "rpc_dbd", "rpc_client", "commands_total"):
            r[f"{key}_x_raw"] = r[key] / base[key] if base[key] else float("nan")
        r["rpc_all_x_raw"] = ((r["rpc_ctld"] + r["rpc_dbd"]) / (base["rpc_ctld"] + base["rpc_dbd"])
                              if base["rpc_ctld"] + base["rpc_dbd"] else float("nan"))
        r["overhead_per_cell_ms"] = (r["submit_per_cell_ms"] - base["submit_per_cell_ms"]
                                     + 1000 * (r["detect_mean_s"] - base["detect_mean_s"]))
        r["overhead_se_ms"] = 1000 * ((r["detect_sd_s"] ** 2 / max(1, r["detected"]) +
                                       base["detect_sd_s"] ** 2 / max(1, base["detected"])) ** 0.5)
    return rows


def _f(value: Any, fmt: str = ".2f") -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "–"
    return format(value, fmt) if isinstance(value, float) else str(value)


HEADER = ("| way | N | S | makespan s (× raw) | wall s (× raw) | start-up s | submit all s | submit ms/cell | "
          "detection mean / median / p90 s | overhead ms/cell (± se) | own SLURM commands (× raw) | "
          "slurmctld RPCs (× raw) | slurmdbd RPCs (× raw) | all RPCs × raw | ok |")


def _commands(r: dict[str, Any]) -> str:
    parts = ", ".join(f"{k} {v}" for k, v in r["commands"].items())
    return f"{r['commands_total']} ({_f(r.get('commands_total_x_raw'))}): {parts}"


def table(rows: list[dict[str, Any]]) -> str:
    """Return the markdown table of ``rows`` (one line per way and size)."""
    lines = [HEADER, "|" + "---|" * HEADER.count(" | ") + "---|"]
    for r in rows:
        ov = "–" if r["way"] == "raw" else f"{_f(r.get('overhead_per_cell_ms'), '.0f')} (± {_f(r.get('overhead_se_ms'), '.0f')})"
        lines.append(
            f"| {r['way']} | {r['n']} | {r['sleep_s']:g} | {_f(r['makespan_s'], '.1f')} ({_f(r.get('makespan_s_x_raw'), '.3f')}) | "
            f"{_f(r['wall_s'], '.1f')} ({_f(r.get('wall_s_x_raw'), '.3f')}) | {_f(r['startup_s'])} | "
            f"{_f(r['submit_all_s'])} | {_f(r['submit_per_cell_ms'], '.0f')} | {_f(r['detect_mean_s'])} / "
            f"{_f(r['detect_median_s'])} / {_f(r['detect_p90_s'])} | {ov} | {_commands(r)} | {r['rpc_ctld']} "
            f"({_f(r.get('rpc_ctld_x_raw'))}) | {r['rpc_dbd']} ({_f(r.get('rpc_dbd_x_raw'))}) | "
            f"{_f(r.get('rpc_all_x_raw'))} | {r['ok']}/{r['n']} |")
    return "\n".join(lines)
