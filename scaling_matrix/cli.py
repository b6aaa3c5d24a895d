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
from scaling_matrix.errors import ConfigError, ScalingError
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
         profile: Annotated[str | None, typer.Option(help="profile preset, YAML path or block:NAME")] = None,
         variant: VariantOpt = None,
         json_out: Annotated[bool, typer.Option("--json", help="print the rendered argv as one JSON "
                                                "document (what the contract tier checks)")] = False,
         skip_unsupported: SkipOpt = False,
         out: Annotated[str | None, typer.Option(help="also write every batch script, argv and recipe "
                                                 "into this folder")] = None) -> None:
    """Validate a matrix, print every rendered command and memory prediction; submits nothing."""
    from scaling_matrix.cells import plan_document
    from scaling_matrix.matrix import expand, unsupported_cells
    from scaling_matrix.versions import profile_version_problems

    try:
        mat = load_matrix(matrix, variant=variant)
        prof = _profile(profile or _default_profile_for(mat))
        for warning in profile_version_problems(prof)[1]:
            say(err_console, f"warning: {warning}", "bold yellow")
        cells = plan_cells(mat, prof, skip_unsupported)
        skipped = unsupported_cells(expand(mat), prof) if skip_unsupported else []
        written = _write_plan(mat, prof, out, skip_unsupported) if out is not None else None
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
    if written is not None:
        say(console, f"\nwrote every job of {len(cells)} cells under {written}", "bold")


def _print_plan(matrix: str, prof: Any, cells: list[Any]) -> None:
    """Print the imports, every cell's command and its memory verdict."""
    from scaling_matrix.cells import plan_cell, plan_import
    from scaling_matrix.render.shell import shell_join

    from scaling_matrix.workload import SLEEP, needs_import

    say(console, f"matrix {matrix}: {len(cells)} cells valid on profile {prof.name} "
        f"(workload={prof.workload}, device={prof.device})", "bold")
    for model in {pc.model.name: pc for pc in cells if needs_import(pc.model)}.values():
        say(console, f"\nimport {model.model.name}", "cyan")
        say(console, "  " + shell_join(plan_import(model, prof)))
    verdicts = {} if prof.workload == SLEEP else _memory_verdicts(cells, prof)
    for pc in cells:
        p = plan_cell("RUN-ID", pc, prof)  # placeholder id: plan runs nothing
        say(console, f"\n{pc.cell.key}" + (f"  {pc.cell.note}" if pc.cell.note else ""), "cyan")
        say(console, "  " + p.command)
        a = verdicts.get(pc.cell.key)
        if a is None:
            say(console, f"  memory: not applicable (workload {SLEEP}: no training)", "green")
            continue
        color = "red" if a.infeasible else "yellow" if a.prediction and a.prediction.verdict == "tight" else "green"
        say(console, f"  {a.describe()}", color)


def _memory_verdicts(cells: list[Any], prof: Any) -> dict[str, Any]:
    """Return every cell's memory assessment by key (the CPU runtime floor is measured once, cached)."""
    from scaling_matrix.feasibility import assess

    overhead = None
    if prof.device == "cpu":
        from scaling_matrix.adapters.runtime_probe import cpu_runtime_baseline_gib
        overhead = cpu_runtime_baseline_gib()
    return {a.planned.cell.key: a for a in assess(cells, prof, _calibrations(prof.device), overhead)}


def _profile(name_or_path: str) -> Any:
    """Return the profile a CLI option names (``block:NAME`` needs Prefect: imported only then)."""
    if name_or_path.startswith("block:"):
        from blocks.cluster import resolve_profile

        return resolve_profile(name_or_path)
    return load_profile(name_or_path)


def _write_plan(mat: MatrixSpec, prof: Any, out: str, skip_unsupported: bool = False) -> Any:
    """Write every job of ``mat`` on ``prof`` (placeholder run id RUN-ID) into ``out``; return the folder."""
    from pathlib import Path

    from scaling_matrix.ownership import claim_output_dir
    from scaling_matrix.planning import plan_run
    from scaling_matrix.runs import write_rendered

    folder = claim_output_dir(Path(out), "--out")  # a file or somebody else's folder: an error
    write_rendered(plan_run(mat, prof, "RUN-ID", skip_unsupported), folder)
    return folder


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
        profile: Annotated[str, typer.Option(help="profile preset, YAML path or block:NAME")] = "local",
        dry_run: Annotated[bool, typer.Option("--dry-run", help="render every job into the run folder, "
                                              "launch nothing")] = False,
        resume: Annotated[str | None, typer.Option(help="resume this run id")] = None,
        variant: VariantOpt = None,
        force: Annotated[bool, typer.Option("--force", help="run cells predicted not to fit")] = False,
        repeats: Annotated[int | None, typer.Option(help="run every cell N times (detector averages)")] = None,
        preflight: Annotated[bool | None, typer.Option(
            "--preflight/--no-preflight", help="sbatch --test-only every job before submitting any "
            "(default: the profile's slurm.preflight)")] = None,
        skip_unsupported: SkipOpt = False) -> None:
    """Run a matrix through the scaling-matrix Prefect flow, then print the scaling tables."""
    from scaling_matrix.stop import CancelToken, block_ctrl_c, ctrl_c_sets, hand_over, unblock_ctrl_c

    mask = None if dry_run else block_ctrl_c()  # first thing: before any thread exists (numpy starts one)
    from scaling_matrix.runs import new_run_id

    run_id = resume or new_run_id()
    try:  # fail fast: bad input, a bad --resume, somebody else's import target, a cell SLURM refuses
        if _checked_run_input(matrix, profile, variant, repeats, resume, run_id, dry_run, preflight,
                              skip_unsupported):
            preflight = False  # done here, before the flow (and its log) starts
    except ScalingError as exc:
        unblock_ctrl_c(mask)  # no run follows: Ctrl-C is this process's again
        raise _fail(exc) from exc
    token = CancelToken()  # this run's stop request: Ctrl-C sets it, the flow run below takes it
    if not dry_run:
        ctrl_c_sets(token)  # Ctrl-C then cancels gracefully
    scaling_matrix = _matrix_flow()

    console.print(f"run {run_id}: Ctrl-C or SIGTERM cancels it (jobs are scancelled, cells stored)")
    with hand_over(token):
        state = scaling_matrix(matrix=matrix, profile=profile, run_id=run_id, dry_run=dry_run, variant=variant,
                               force=force, repeats=repeats, preflight=preflight, return_state=True,
                               **({"skip_unsupported": True} if skip_unsupported else {}))
    _print_end(run_id, state, dry_run)


def _matrix_flow() -> Any:
    """Return the matrix flow, imported while Prefect's temporary server starts (when the run needs one)."""
    for key, value in PREFECT_DEFAULTS.items():
        os.environ.setdefault(key, value)
    from flows.early_api import start_api_early, wait_for_api

    api = start_api_early()
    from flows.matrix import scaling_matrix

    wait_for_api(api)  # the flow starts once the server answers
    return scaling_matrix


def _checked_run_input(matrix: str, profile: str, variant: str | None, repeats: int | None, resume: str | None,
                       run_id: str, dry_run: bool, preflight: bool | None, skip_unsupported: bool = False) -> bool:
    """Make every check the CLI makes before starting the flow (ConfigError naming the field); return
    True when the preflight ran (and passed) here."""
    from scaling_matrix.imports import check_import_targets
    from scaling_matrix.planning import plan_run
    from scaling_matrix.preflight import require_fit, test_every_job, wants_preflight

    prof = _profile(profile)
    mat = load_matrix(matrix, variant=variant, repeats=repeats)
    if resume is not None:
        check_resume(resume)
    run = plan_run(mat, prof, run_id, skip_unsupported)
    if dry_run:
        return False
    check_import_targets(run.cells, prof)
    if not wants_preflight(prof, preflight):
        return False
    require_fit(run, test_every_job(run))  # PreflightRejected: one line per refused job, nothing submitted
    return True


def _print_end(run_id: str, state: Any, dry_run: bool) -> None:
    """Print the report (or where a dry run wrote its files) and exit like the flow run ended."""
    if state.is_failed():
        exc = state.result(raise_on_failure=False)
        if isinstance(exc, ConfigError):  # refused before anything ran (e.g. preflight): its lines, exit 2
            raise _fail(exc)
    if dry_run and state.is_completed():
        from scaling_matrix.paths import run_dir

        say(console, f"run {run_id}: every job rendered under {run_dir(run_id)} (nothing launched)")
    elif not dry_run:
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
