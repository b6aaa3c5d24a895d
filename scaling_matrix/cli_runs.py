"""``scaling-matrix report | runs | cells | cancel``: stored runs, their cells, and stopping a run.

Typer-annotated functions registered by ``scaling_matrix.cli``. Tables adapt to the terminal:
below 120 columns (``$COLUMNS``, or 80 for a narrow terminal) each scaling table is printed
transposed, one column per cell, so it stays readable at 80 columns; ``--layout`` forces either.
"""

from __future__ import annotations

import shutil
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from scaling_matrix.cli_checks import say
from scaling_matrix.errors import ScalingError
from scaling_matrix.flops import ATTENTION, DEFAULT_CONVENTION, LORA, FlopConvention
from scaling_matrix.yardstick import DEFAULT_THRESHOLD
from scaling_matrix.records import CellStatus

if TYPE_CHECKING:
    import pandas as pd

    from scaling_matrix.adapters.store import ResultsStore

WIDE_MIN_COLUMNS = 120
# markup off: user text (ids, reasons, notes) is printed verbatim through `say` (issue 13)
console = Console(width=shutil.get_terminal_size((200, 24)).columns, markup=False, highlight=False)
err_console = Console(stderr=True, markup=False, highlight=False)


class Format(StrEnum):
    """Report output formats."""

    table = "table"
    json = "json"
    csv = "csv"
    markdown = "markdown"


class Layout(StrEnum):
    """Table layouts: one row per cell (wide), one column per cell (tall), or by terminal width."""

    auto = "auto"
    wide = "wide"
    tall = "tall"


def _store() -> ResultsStore:
    from blocks.results_db import resolve_results_url
    from scaling_matrix.adapters.store import ResultsStore

    return ResultsStore(resolve_results_url())


def _fmt(v: Any) -> str:
    if v is None or v != v:
        return "–"
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def rows_for(run_id: str | None, last: bool) -> tuple[str, list[dict[str, Any]]]:
    """Return ``(run id, cell rows)`` of ``run_id`` (or the newest run when ``last`` or no id)."""
    store = _store()
    rid = store.last_run_id() if last or not run_id else run_id
    if rid is None or store.run(rid) is None:
        from blocks.results_db import redacted, resolve_results_url
        from scaling_matrix.config.secrets import shown

        raise ScalingError(f"--run: no run '{shown(run_id or '')}' in {redacted(resolve_results_url())} "
                           "(fix: run `scaling-matrix run` first or pass --run with an id from `scaling-matrix runs`)")
    return rid, store.cells(rid)


def scaling_table(title: str, df: pd.DataFrame, tall: bool) -> Table:
    """Return ``df`` as a rich table: one row per cell, or (``tall``) one column per cell."""
    if not tall:
        table = Table(title=title)
        for col in df.columns:
            table.add_column(str(col), justify="right", overflow="fold")
        for row in df.itertuples(index=False):
            table.add_row(*(_fmt(v) for v in row))
        return table
    table = Table(title=title, show_header=True)
    table.add_column("", justify="left", overflow="fold")
    for gpus in df["GPUs"]:
        table.add_column(f"{gpus} GPU", justify="right")
    for col in df.columns[1:]:
        table.add_row(str(col), *(_fmt(v) for v in df[col]))
    return table


def print_report(run_id: str | None, fmt: Format, last: bool = False, layout: Layout = Layout.auto,
                 convention: FlopConvention | None = None, threshold: float = DEFAULT_THRESHOLD) -> None:
    """Print a stored run's scaling tables (completed cells), the cells that did not complete and the
    published yardstick; ``--format json`` prints the versioned result document (docs/result-schema.md)."""
    from scaling_matrix.analysis import scaling_tables
    from scaling_matrix.report import incomplete_cells, render_csv, render_markdown, report_rows, table_title
    from scaling_matrix.result_doc import render_document, result_document

    rid, cells = rows_for(run_id, last)
    convention = convention or DEFAULT_CONVENTION
    if fmt is not Format.table:
        text = {Format.json: lambda: render_document(result_document(_store().run(rid) or {"run_id": rid}, cells,
                                                                      convention, threshold)) + "\n",
                Format.csv: lambda: render_csv(report_rows(cells, convention, threshold)),
                Format.markdown: lambda: render_markdown(cells, rid)}[fmt]()
        typer.echo(text, nl=False)
        return
    tall = layout is Layout.tall or (layout is Layout.auto and console.width < WIDE_MIN_COLUMNS)
    for key, df in scaling_tables(cells).items():
        console.print(scaling_table(f"{table_title(key)} — run {rid}", df, tall))
    for line in incomplete_cells(cells):
        say(console, line, "red")
    print_yardstick(cells, threshold)


def print_yardstick(cells: list[dict[str, Any]], threshold: float) -> None:
    """Print each completed cell next to its published reference (or why there is none)."""
    from scaling_matrix.efficiency import yardstick_rows, yardstick_table

    rows = yardstick_table(yardstick_rows([c for c in cells if c.get("status") == "completed"], threshold))
    if not rows:
        return
    table = Table(title=f"Published yardstick: tokens/s per GPU (flagged below {threshold:.0%})")
    for col in rows[0]:
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*(_fmt(v) for v in row.values()))
    console.print(table)


def report(run_id: Annotated[str | None, typer.Option("--run", help="run id")] = None,
           last: Annotated[bool, typer.Option("--last", help="the most recent run")] = False,
           format: Annotated[Format, typer.Option("--format", "-f")] = Format.table,
           layout: Annotated[Layout, typer.Option(help="table layout (auto: tall below 120 columns)")]
           = Layout.auto,
           attention_flops: Annotated[str, typer.Option(help=f"attention FLOPs: {'|'.join(ATTENTION)}")] = "causal",
           lora_flops: Annotated[str, typer.Option(help=f"LoRA FLOPs: {'|'.join(LORA)} (2/3 or (2+r)/3 of "
                                                   "dense)")] = "two_thirds",
           threshold: Annotated[float, typer.Option(help="flag cells below this fraction of the published "
                                                    "number", min=0.01, max=10.0)] = DEFAULT_THRESHOLD) -> None:
    """Print the scaling tables of a stored run (completed cells; the others listed below), efficiency
    and the published yardstick; ``--format json`` prints the versioned result document."""
    if not last and not run_id:
        say(err_console, "error: --run: pass --last or --run RUN_ID", "bold red")
        raise typer.Exit(2)
    try:
        convention = FlopConvention(attention_flops, lora_flops)
    except ValueError as exc:
        say(err_console, f"error: --attention-flops/--lora-flops: {exc} (fix: pick one of the listed values)",
            "bold red")
        raise typer.Exit(2) from exc
    try:
        print_report(run_id or "", format, last, layout, convention, threshold)
    except ScalingError as exc:
        say(err_console, f"error: {exc}", "bold red")
        raise typer.Exit(1) from exc


def runs(limit: int = 20) -> None:
    """List stored runs, newest first: id, status (running, completed, failed, cancelled, crashed)."""
    for r in _store().runs(limit):
        say(console, f"{r['run_id']}  {r['status']:<9} {r['matrix']} on {r['profile']} "
            f"({r['workload']}/{r['device']}) by {r['user']}")


def cells(run_id: Annotated[str | None, typer.Argument(help="run id (default: the newest run)")] = None) -> None:
    """List the cells of a run: status, cell id (for `history --cell`), SLURM job, step time."""
    try:
        rid, rows = rows_for(run_id, run_id is None)
    except ScalingError as exc:
        say(err_console, f"error: {exc}", "bold red")
        raise typer.Exit(1) from exc
    say(console, f"run {rid}: {len(rows)} cells")
    for c in rows:
        extra = f"  job {c['job_id']}" if c.get("job_id") else ""
        step = f"  step {_fmt(c.get('median_step_time_s'))} s" if c.get("median_step_time_s") else ""
        say(console, f"{c['status']:<9} {c['cell_id']}{extra}{step}")


def cancel(run_id: Annotated[str, typer.Argument(help="run id (see `scaling-matrix runs`)")]) -> None:
    """Cancel a run: scancel every job its ledger holds (also after the orchestrator was killed),
    stop its local ranks, store unfinished cells and the run as cancelled."""
    from scaling_matrix.run_control import cancel_run

    from scaling_matrix.cli_checks import check_resume

    try:
        check_resume(run_id, "RUN_ID")  # strict id pattern; an unknown run lists the recent ones
    except ScalingError as exc:
        say(err_console, f"error: {exc}", "bold red")
        raise typer.Exit(1) from exc
    store = _store()
    jobs = cancel_run(store, run_id, "cancelled with `scaling-matrix cancel`")
    left = [c["cell_id"] for c in store.cells(run_id) if c["status"] == CellStatus.CANCELLED]
    say(console, f"run {run_id} {store.run(run_id)['status']}: "
        f"scancelled {', '.join(jobs) if jobs else 'no job'}; {len(left)} cell(s) stored cancelled")


__all__ = ["Format", "Layout", "cancel", "cells", "print_report", "report", "rows_for", "runs", "scaling_table"]
