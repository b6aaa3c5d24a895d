"""``scaling-matrix history | leaderboard | compare``: results across runs, people and clusters.

Typer-annotated functions registered by ``scaling_matrix.cli``. The database is the one
``resolve_results_url()`` picks ($SCALING_DB_URL, the $SCALING_DB_BLOCK block, or SQLite).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from scaling_matrix.cli_checks import say
from scaling_matrix.layout import Layout

if TYPE_CHECKING:
    from scaling_matrix.adapters.store import ResultsStore

console = Console(width=200, markup=False, highlight=False)  # user text printed verbatim
SCALING_METRICS = ("time_scaling", "mem_scaling", "efficiency")
COMPARE_METRICS = ("median_step_time_s", "step_time_s", "wall_clock_s", "peak_mem_mib", "final_loss")


def _store() -> ResultsStore:
    from scaling_matrix.adapters.store import ResultsStore
    from scaling_matrix.paths import results_url

    if os.environ.get("SCALING_DB_BLOCK") and not os.environ.get("SCALING_DB_URL"):
        from blocks.results_db import resolve_results_url  # imports Prefect: only when needed

        return ResultsStore(resolve_results_url())
    return ResultsStore(results_url())


def _fmt(value: Any, pct: bool = False) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "–"
    if pct:
        return f"{value:+.1f}%"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _pct(new: Any, old: Any) -> float | None:
    if new is None or old is None or not old:
        return None
    return 100.0 * (float(new) - float(old)) / abs(float(old))


def leaderboard_rows(rows: Iterable[Mapping[str, Any]], metric: str = "median_step_time_s",
                     top: int = 0) -> list[dict[str, Any]]:
    """Return the best ``metric`` (lowest) per (model, track, gpus) and (user, cluster), ranked."""
    best: dict[tuple[Any, ...], Mapping[str, Any]] = {}
    for r in rows:
        if r.get(metric) is None:
            continue
        k = (r["model"], r["track"], r["workload"], r["device"], r["gpus"], r["user"], r["cluster"])
        if k not in best or r[metric] < best[k][metric]:
            best[k] = r
    groups: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
    for k, r in sorted(best.items(), key=lambda kv: (kv[0][:5], kv[1][metric])):
        groups.setdefault(k[:5], []).append(r)
    out = []
    for entries in groups.values():
        leader = entries[0][metric]
        for rank, r in enumerate(entries[:top or None], 1):
            out.append({"model": r["model"], "track": r["track"], "gpus": r["gpus"], "rank": rank,
                        metric: r[metric], "vs_best_pct": _pct(r[metric], leader), "user": r["user"],
                        "cluster": r["cluster"], "layout": Layout.from_columns(r).slug(),
                        "workload": r["workload"], "device": r["device"], "run_id": r["run_id"],
                        "date": str(r.get("created_at", ""))[:16]})
    return out


def compare_rows(cells_a: Sequence[Mapping[str, Any]], cells_b: Sequence[Mapping[str, Any]],
                 metrics: Sequence[str] = COMPARE_METRICS) -> list[dict[str, Any]]:
    """Return one row per cell id of either run: status in both and B-vs-A deltas in %."""
    a = {c["cell_id"]: c for c in cells_a}
    b = {c["cell_id"]: c for c in cells_b}
    out = []
    for cid in sorted(set(a) | set(b)):
        ca, cb = a.get(cid, {}), b.get(cid, {})
        row: dict[str, Any] = {"cell_id": cid, "status_a": ca.get("status", "absent"),
                               "status_b": cb.get("status", "absent")}
        for m in metrics:
            row[f"{m}_a"], row[f"{m}_b"] = ca.get(m), cb.get(m)
            row[f"{m}_delta_pct"] = _pct(cb.get(m), ca.get(m))
        out.append(row)
    return out


def _print_table(title: str, rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> None:
    table = Table(title=title)
    for col in columns:
        table.add_column(col, justify="left" if col in ("cell_id", "model", "track", "user", "cluster") else "right")
    for r in rows:
        table.add_row(*(_fmt(r.get(c), pct=c.endswith("_pct")) for c in columns))
    console.print(table)


def history(cell: Annotated[str, typer.Option("--cell", help="cell id (or its slug), e.g. "
                                              "llama31_8b/data_parallel/lora/g4/tp1-pp1-ep1")],
            metric: Annotated[str, typer.Option(help="metric to show")] = "median_step_time_s",
            cluster: Annotated[str | None, typer.Option(help="only this cluster")] = None,
            limit: Annotated[int, typer.Option(help="newest N runs per series")] = 30,
            as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
    """Print one cell's metric across runs, oldest first, with the regression verdict of each run.

    Verdicts are the nightly ``analyze`` flow's: noise pooled over the cells of the same cluster.
    """
    from scaling_matrix.history import METRIC_DIRECTIONS, build_series, detect_regressions, with_scaling

    if metric not in METRIC_DIRECTIONS:
        raise typer.BadParameter(f"unknown metric {metric!r}; one of {sorted(METRIC_DIRECTIONS)}")
    rows = _store().history(cluster=cluster)  # every cell: scaling columns and pooled noise need them
    rows = with_scaling(rows) if metric in SCALING_METRICS else rows
    mine = [r for r in rows if cell in (r["cell_id"], _slug(r["cell_id"]))]
    out = []
    for key, points in build_series(mine, metric).items():
        for p in points[-limit:]:
            alert = next((a for a in detect_regressions(rows, p.run_id, [metric]) if a.key == key), None)
            out.append({"series": key.label(), "date": p.at.isoformat(timespec="minutes"), "run_id": p.run_id,
                        "user": p.provenance.get("user"), "git_rev": p.provenance.get("git_rev"), metric: p.value,
                        "regression": f"{alert.change_pct:+.1f}% ({alert.rule})" if alert else ""})
    if not out:
        say(console, f"no completed results for cell {cell!r} ({metric})")
        raise typer.Exit(1)
    if as_json:
        typer.echo(json.dumps(out, indent=2))
        return
    _print_table(f"{cell}: {metric} across runs", out,
                 ["series", "date", "run_id", "user", "git_rev", metric, "regression"])


def leaderboard(model: Annotated[str | None, typer.Option(help="only this model")] = None,
                track: Annotated[str | None, typer.Option(help="only this track")] = None,
                top: Annotated[int, typer.Option(help="entries per (model, track, GPUs); 0 = all")] = 0,
                as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
    """Print the best median step time per (model, track, GPUs) for every user and cluster."""
    rows = [r for r in _store().history() if (model is None or r["model"] == model)
            and (track is None or r["track"] == track)]
    out = leaderboard_rows(rows, top=top)
    if as_json:
        typer.echo(json.dumps(out, indent=2))
        return
    _print_table("Leaderboard: best median step time (s), people and clusters side by side", out,
                 ["model", "track", "gpus", "rank", "median_step_time_s", "vs_best_pct", "user", "cluster",
                  "layout", "workload", "device", "run_id", "date"])


def compare(run_a: Annotated[str, typer.Argument(help="baseline run id")],
            run_b: Annotated[str, typer.Argument(help="run id compared with the baseline")],
            as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
    """Print per-cell deltas of RUN_B against RUN_A in percent (step time, wall clock, memory, loss)."""
    store = _store()
    runs = {rid: store.run(rid) for rid in (run_a, run_b)}
    missing = [rid for rid, r in runs.items() if r is None]
    if missing:
        say(console, f"no run {', '.join(missing)} (see `scaling-matrix runs`)", "red")
        raise typer.Exit(1)
    out = compare_rows(store.cells(run_a), store.cells(run_b))
    if as_json:
        typer.echo(json.dumps(out, indent=2, default=str))
        return
    for label, rid in (("A", run_a), ("B", run_b)):
        r = runs[rid] or {}
        say(console, f"{label}: {rid}  user={r['user']} cluster={r['cluster']} git={r['git_rev'] or '–'} "
            f"created={str(r['created_at'])[:16]}")
    cols = ["cell_id", "status_a", "status_b"] + [f"{m}_{s}" for m in COMPARE_METRICS[:4]
                                                  for s in ("a", "b", "delta_pct")]
    _print_table(f"{run_b} vs {run_a} (delta = B vs A)", out, cols)


__all__ = ["compare", "compare_rows", "history", "leaderboard", "leaderboard_rows"]
