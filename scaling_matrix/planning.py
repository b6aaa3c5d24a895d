"""A run's decisions, as pure functions: what it plans, what it still has to run, how it ended.

``plan_run`` renders every job of the run up front (each cell's argv and, on SLURM, its batch
script; each model's import job), so anything a profile cannot express is a ConfigError naming
the cell before a run row exists. ``select_todo`` decides what to launch after the imports;
``summarize_run`` turns the stored cells into the run's status and the flow's return value.
Pure: no Prefect, no store, no processes (``paths`` only resolves where folders would be).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from scaling_matrix.backends.base import JobSpec
from scaling_matrix.cells import CellPlan, import_spec, job_spec, plan_cell, plan_import
from scaling_matrix.config.models import MatrixSpec, ProfileSpec
from scaling_matrix.errors import ConfigError, Problem, RenderError, ScalingError
from scaling_matrix.feasibility import assess
from scaling_matrix.history import Alert, RegressionDetected
from scaling_matrix.matrix import PlannedCell, plan_cells
from scaling_matrix.paths import scaling_home
from scaling_matrix.records import CellStatus, RunStatus, StoredCell
from scaling_matrix.workload import needs_import

RENDER_FIX = "fix the profile's slurm/container settings or the cell so the job can be written"


class CellFailures(ScalingError):
    """Raised at the end of a run in which some cells did not complete."""


@dataclass(frozen=True)
class RunPlan:
    """Everything a run will do, rendered: its cells, their first attempts' jobs, the imports."""

    run_id: str
    matrix: MatrixSpec
    profile: ProfileSpec
    cells: list[PlannedCell]
    plans: list[CellPlan]
    jobs: dict[str, JobSpec]  # first attempt of every cell, by cell key
    imports: dict[str, JobSpec]  # one per model, by model name


def first_cell_per_model(cells: Iterable[PlannedCell]) -> dict[str, PlannedCell]:
    """Return one planned cell per model (the import is the model's, not the cell's)."""
    return {pc.model.name: pc for pc in cells}


def import_jobs(cells: Iterable[PlannedCell], profile: ProfileSpec) -> dict[str, JobSpec]:
    """Return the import job of every model of ``cells`` that has weights to import (logs under
    ``$SCALING_HOME/import-logs/<model>``)."""
    return {name: import_spec(pc, profile, plan_import(pc, profile), scaling_home() / "import-logs" / name)
            for name, pc in first_cell_per_model(cells).items() if needs_import(pc.model)}


def plan_run(matrix: MatrixSpec, profile: ProfileSpec, run_id: str, skip_unsupported: bool = False) -> RunPlan:
    """Return the rendered plan of ``matrix`` on ``profile`` as run ``run_id`` (``skip_unsupported``: leave out
    the cells the profile's library release cannot run instead of refusing the matrix).

    Raises:
        ConfigError: a cell breaks a rule, or a job cannot be rendered (one line per cell).
    """
    cells = plan_cells(matrix, profile, skip_unsupported)
    plans = [plan_cell(run_id, pc, profile) for pc in cells]
    jobs: dict[str, JobSpec] = {}
    imports: dict[str, JobSpec] = {}
    problems: list[Problem] = []
    for plan in plans:
        try:
            jobs[plan.planned.cell.key] = job_spec(plan, 1)
        except (RenderError, ValueError) as exc:
            problems.append(Problem(f"matrix {matrix.name}: cell {plan.planned.cell.key}", str(exc), RENDER_FIX))
    try:
        imports = import_jobs(cells, profile)
    except (RenderError, ValueError) as exc:
        problems.append(Problem(f"profile {profile.name}: model import", str(exc), RENDER_FIX))
    if problems:
        raise ConfigError.of(problems[:12])
    return RunPlan(run_id, matrix, profile, cells, plans, jobs, imports)


@dataclass(frozen=True)
class Todo:
    """What a run launches, and the cells it stores without running (with the reason)."""

    launch: list[CellPlan]
    kept: list[str] = field(default_factory=list)  # completed in an earlier invocation (resume)
    not_imported: list[tuple[CellPlan, str]] = field(default_factory=list)
    infeasible: list[tuple[CellPlan, str]] = field(default_factory=list)


def select_todo(plans: Sequence[CellPlan], stored: Iterable[StoredCell], imported: Mapping[str, str],
                profile: ProfileSpec, force: bool = False, cancelled: bool = False) -> Todo:
    """Return what to launch: every cell not completed yet whose model was imported and which is
    predicted to fit (``force``: also those predicted not to); nothing once the run was ``cancelled``
    (an import stopped by the cancel is no import failure)."""
    done = {c.cell_id for c in stored if c.status is CellStatus.COMPLETED}
    if cancelled:
        return Todo([], sorted(done))
    open_plans = [p for p in plans if p.planned.cell.key not in done]
    failed = [(p, f"model import {imported[p.planned.model.name]}"[:500]) for p in open_plans
              if imported.get(p.planned.model.name, "").startswith("failed")]
    not_imported = {p.planned.cell.key for p, _ in failed}
    candidates = [p for p in open_plans if p.planned.cell.key not in not_imported]
    verdicts = {a.planned.cell.key: a for a in assess([p.planned for p in candidates], profile)}
    infeasible = [(p, verdicts[p.planned.cell.key].describe()[:500]) for p in candidates
                  if verdicts[p.planned.cell.key].infeasible and not force]
    skip = {p.planned.cell.key for p, _ in infeasible}
    return Todo([p for p in candidates if p.planned.cell.key not in skip], sorted(done), failed, infeasible)


def run_status(statuses: Iterable[str], cancelled: bool = False) -> RunStatus:
    """Return a finished run's status from its cells' statuses: cancelled, failed or completed.

    A run asked to stop is cancelled; a cell stored cancelled makes the run cancelled too; a failed
    cell, or one left pending/running, makes it failed; otherwise completed.
    """
    seen = {CellStatus(s) for s in statuses}
    if cancelled or CellStatus.CANCELLED in seen:
        return RunStatus.CANCELLED
    if any(not s.ok for s in seen):
        return RunStatus.FAILED
    return RunStatus.COMPLETED


@dataclass(frozen=True)
class RunSummary:
    """How a run ended: its status, counts, the cells that did not complete, regressions."""

    run_id: str
    status: RunStatus
    cells: int
    failed: list[str]
    alerts: list[Alert] = field(default_factory=list)
    regressions_key: str = ""

    def as_dict(self) -> dict[str, Any]:
        """Return the flow's return value: run id, cell counts, failed cells, regressions."""
        return {"run_id": self.run_id, "cells": self.cells, "completed": self.cells - len(self.failed),
                "failed": self.failed, "regressions": [a.summary() for a in self.alerts]}

    def error(self) -> ScalingError | None:
        """Return the error that makes the flow run Failed (failed cells first, then regressions), or None."""
        if self.failed:
            also = f"; also {len(self.alerts)} regression(s)" if self.alerts else ""
            return CellFailures(f"{len(self.failed)} of {self.cells} cells did not complete: {self.failed}{also}")
        if self.alerts:  # Failed state: a Prefect automation on prefect.flow-run.Failed alerts
            return RegressionDetected(self.run_id, self.alerts, self.regressions_key)
        return None


def summarize_run(run_id: str, n_cells: int, stored: Sequence[StoredCell], alerts: Sequence[Alert] = (),
                  regressions_key: str = "") -> RunSummary:
    """Return the summary of a finished run from its stored cells and regression alerts."""
    bad = [f"{c.cell_id}: {c.failure_class}" for c in stored if not c.status.ok]
    return RunSummary(run_id, run_status(c.status for c in stored), n_cells, bad, list(alerts), regressions_key)


__all__ = ["CellFailures", "RunPlan", "RunSummary", "Todo", "first_cell_per_model", "import_jobs", "plan_run", "run_status",
           "select_todo", "summarize_run"]
