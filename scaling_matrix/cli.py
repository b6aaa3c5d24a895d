"""``scaling-matrix`` command line: run, plan, report, presets."""

from __future__ import annotations

import json
import os
import sys
from typing import Annotated, Any

import typer
from rich.console import Console

from scaling_matrix.cli_checks import check_resume, say
from scaling_matrix.config.loading import load_matrix, load_profile, preset_names
from scaling_matrix.config.models import MatrixSpec
from scaling_matrix.errors import ScalingError
from scaling_matrix.matrix import plan_cells

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_show_locals=False,
                  help="NeMo fine-tuning scaling benchmarks as Prefect flows.")
# markup=False: user-supplied text (paths, notes, log lines, commands with [..]) is printed verbatim
console = Console(width=None if sys.stdout.isatty() else 200, markup=False, highlight=False)
err_console = Console(stderr=True, markup=False, highlight=False)

PREFECT_DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
}


def _fail(exc: Exception, code: int = 2) -> typer.Exit:
    for line in str(exc).splitlines() or [type(exc).__name__]:
        say(err_console, "error: " + line, "bold red")
    return typer.Exit(code)


def _default_profile_for(matrix: MatrixSpec) -> str:
    """Return the profile preset ``plan`` uses when none is given: local for tiny models, else ibex."""
    return "local" if {m.workload for m in matrix.models.values()} == {"tiny"} else "ibex"


VariantOpt = Annotated[str | None, typer.Option(help="faithful|corrected: apply cells' 'corrected:' overrides")]
SkipOpt = Annotated[bool, typer.Option("--skip-unsupported", help="leave out (and list) the cells the profile's "
                                       "library release cannot run, e.g. Mixtral on Megatron-Bridge 0.5")]


@app.command()
def plan(matrix: Annotated[str, typer.Option(help="matrix preset or YAML path")] = "smoke",
         profile: Annotated[str | None, typer.Option(help="profile preset or YAML path")] = None,
         variant: VariantOpt = None,
         json_out: Annotated[bool, typer.Option("--json", help="print the rendered argv as one JSON "
                                                "document (what the contract tier checks)")] = False,
         skip_unsupported: SkipOpt = False) -> None:
    """Validate a matrix, print every rendered command and memory prediction; submits nothing."""
    from scaling_matrix.cells import plan_document
    from scaling_matrix.matrix import expand, unsupported_cells
    from scaling_matrix.versions import profile_version_problems

    try:
        mat = load_matrix(matrix, variant=variant)
        prof = load_profile(profile or _default_profile_for(mat))
        for warning in profile_version_problems(prof)[1]:
            say(err_console, f"warning: {warning}", "bold yellow")
        cells = plan_cells(mat, prof, skip_unsupported)
        skipped = unsupported_cells(expand(mat), prof) if skip_unsupported else []
    except ScalingError as exc:
        raise _fail(exc) from exc
    if json_out:
        doc = plan_document(mat.name, prof, cells)
        doc["skipped"] = [{"key": pc.cell.key, "job_name": pc.cell.job_name, "reason": why} for pc, why in skipped]
        typer.echo(json.dumps(doc, indent=1))
        return
    for pc, why in skipped:
        say(err_console, f"skipped: {pc.cell.key}: {why}", "yellow")
    _print_plan(matrix, prof, cells)


def _print_plan(matrix: str, prof: Any, cells: list[Any]) -> None:
    """Print the imports, every cell's command and its memory verdict."""
    from scaling_matrix.cells import plan_cell, plan_import
    from scaling_matrix.feasibility import assess
    from scaling_matrix.render.shell import shell_join

    overhead = None
    if prof.device == "cpu":
        from scaling_matrix.adapters.runtime_probe import cpu_runtime_baseline_gib
        overhead = cpu_runtime_baseline_gib()
    verdicts = {a.planned.cell.key: a for a in assess(cells, prof, _calibrations(prof.device), overhead)}
    say(console, f"matrix {matrix}: {len(cells)} cells valid on profile {prof.name} "
        f"(workload={prof.workload}, device={prof.device})", "bold")
    for model in {pc.model.name: pc for pc in cells}.values():
        say(console, f"\nimport {model.model.name}", "cyan")
        say(console, "  " + shell_join(plan_import(model, prof)))
    for pc in cells:
        p = plan_cell("RUN-ID", pc, prof)  # placeholder id: plan runs nothing
        say(console, f"\n{pc.cell.key}" + (f"  {pc.cell.note}" if pc.cell.note else ""), "cyan")
        say(console, "  " + p.command)
        a = verdicts[pc.cell.key]
        color = "red" if a.infeasible else "yellow" if a.prediction and a.prediction.verdict == "tight" else "green"
        say(console, f"  {a.describe()}", color)


def _calibrations(device: str) -> dict[str, float]:
    """Return per-model memory calibration factors from the newest 500 completed cells in the results DB
    (one query; empty when none or the DB cannot be read)."""
    from scaling_matrix.adapters.store import ResultsStore
    from scaling_matrix.feasibility import calibrations_from_rows
    from blocks.results_db import resolve_results_url as results_url

    try:
        store = ResultsStore(results_url())
        rows = store.history(limit=500)
    except Exception:  # noqa: BLE001 - calibration is best effort
        return {}
    return calibrations_from_rows(rows, device)


@app.command()
def run(matrix: Annotated[str, typer.Option(help="matrix preset or YAML path")] = "smoke",
        profile: Annotated[str, typer.Option(help="profile preset or YAML path")] = "local",
        dry_run: Annotated[bool, typer.Option("--dry-run", help="render commands, launch nothing")] = False,
        resume: Annotated[str | None, typer.Option(help="resume this run id")] = None,
        variant: VariantOpt = None,
        force: Annotated[bool, typer.Option("--force", help="run cells predicted not to fit")] = False,
        repeats: Annotated[int | None, typer.Option(help="run every cell N times (detector averages)")] = None,
        skip_unsupported: SkipOpt = False) -> None:
    """Run a matrix through the scaling-matrix Prefect flow, then print the scaling tables."""
    from scaling_matrix.stop import CANCEL_ALL, ctrl_c_sets

    if not dry_run:  # first thing: the imports and checks below may start threads (Prefect, torch)
        ctrl_c_sets(CANCEL_ALL)
    from scaling_matrix.execution import check_import_targets

    try:  # fail fast: bad input, a bad --resume, or an import target holding somebody else's data
        prof = load_profile(profile)
        cells = plan_cells(load_matrix(matrix, variant=variant, repeats=repeats), prof, skip_unsupported)
        if resume is not None:
            check_resume(resume)
        if not dry_run:
            check_import_targets(cells, prof)
    except ScalingError as exc:
        raise _fail(exc) from exc
    for key, value in PREFECT_DEFAULTS.items():
        os.environ.setdefault(key, value)
    from flows.matrix import scaling_matrix
    from scaling_matrix.execution import new_run_id

    run_id = resume or new_run_id()
    console.print(f"run {run_id}: Ctrl-C or SIGTERM cancels it (jobs are scancelled, cells stored)")
    state = scaling_matrix(matrix=matrix, profile=profile, run_id=run_id, dry_run=dry_run,
                           variant=variant, force=force, repeats=repeats, return_state=True,
                           **({"skip_unsupported": True} if skip_unsupported else {}))
    if not dry_run:
        print_report(run_id, Format.table)
    if not state.is_completed():
        say(err_console, f"run {run_id} ended {state.name}: {state.message}", "bold red")
        raise typer.Exit(130 if state.is_cancelled() else 1)
    say(console, f"run {run_id} {state.name}", "green")


@app.command()
def presets() -> None:
    """List the shipped matrix and profile presets."""
    console.print("matrices: " + ", ".join(preset_names("matrices")))
    console.print("profiles: " + ", ".join(preset_names("profiles")))


from scaling_matrix.cli_runs import Format, cancel, cells, print_report, report, runs  # noqa: E402
app.command()(report)
app.command()(runs)
app.command()(cells)
app.command()(cancel)

from scaling_matrix.cli_parse import parse_log, scan_logs  # noqa: E402
app.command(name="parse-log")(parse_log)
app.command(name="scan-logs")(scan_logs)

from scaling_matrix.cli_automodel import automodel  # noqa: E402
app.command(name="automodel")(automodel)

from scaling_matrix.cli_history import compare, history, leaderboard  # noqa: E402
app.command(name="history")(history)
app.command(name="leaderboard")(leaderboard)
app.command(name="compare")(compare)

if __name__ == "__main__":
    app()
