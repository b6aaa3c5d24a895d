"""Store tasks: run rows and pending cell rows."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from scaling_matrix.adapters.provenance import driver_provenance, image_provenance
from scaling_matrix.adapters.store import ResultsStore
from scaling_matrix.config.models import ProfileSpec
from scaling_matrix.cells import CellPlan
from scaling_matrix.execution import initial_result
from scaling_matrix.records import CellResult, RunInfo


@task(name="record-run", cache_policy=NO_CACHE)
def record_run(info: RunInfo, plans: list[CellPlan], store_url: str) -> None:
    """Insert the run row and one pending row per cell (so no cell can silently vanish)."""
    store = ResultsStore(store_url)
    store.create_run(info)
    done = {c["cell_id"] for c in store.cells(info.run_id) if c["status"] == "completed"}
    for plan in plans:
        if plan.planned.cell.key not in done:
            store.save_cell(initial_result(plan))


@task(name="record-provenance", cache_policy=NO_CACHE)
def record_provenance(run_id: str, profile: ProfileSpec, store_url: str) -> dict[str, Any]:
    """Store the run's container image digest and driver version; return what was recorded."""
    fields = {**image_provenance(profile.container), **driver_provenance()}
    ResultsStore(store_url).set_provenance(run_id, fields)
    return fields


@task(name="record-cell", cache_policy=NO_CACHE)
def record_cell(result: CellResult, store_url: str) -> None:
    """Store one cell result (used for failures seen only by the flow)."""
    ResultsStore(store_url).save_cell(result)


@task(name="finish-run", cache_policy=NO_CACHE)
def finish_run(run_id: str, status: str, store_url: str, flow_run_id: str | None) -> None:
    """Mark the run finished."""
    ResultsStore(store_url).finish_run(run_id, status, flow_run_id)
