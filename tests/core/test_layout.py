"""A cell's layout is its identity: 1x8, 2x4 and 1x8+cp2 plan, render and store as three cells."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from scaling_matrix.adapters.store import ResultsStore
from scaling_matrix.analysis import scaling_tables
from scaling_matrix.cells import initial_result
from scaling_matrix.config.loading import load_matrix, load_profile
from scaling_matrix.errors import ConfigError
from scaling_matrix.history import series_key
from scaling_matrix.layout import Layout
from scaling_matrix.matrix import expand
from scaling_matrix.planning import plan_run
from scaling_matrix.records import CellMetrics, RunInfo

LLAMA = {"factory": "llama31_8b", "family": "dense", "source": "hf://meta-llama/Llama-3.1-8B", "workload": "nemo"}


def _matrix(tmp_path: Path) -> str:
    path = tmp_path / "layouts.yaml"
    path.write_text(yaml.safe_dump({
        "name": "layouts", "models": {"llama31_8b": LLAMA}, "defaults": {"max_steps": 20, "global_batch_size": 8},
        "cells": [{"model": "llama31_8b", "track": "data_parallel", "gpus": 8},
                  {"model": "llama31_8b", "track": "data_parallel", "gpus": 8, "nodes": 2},
                  {"model": "llama31_8b", "track": "data_parallel", "gpus": 8, "cp": 2, "global_batch_size": 4}]}))
    return str(path)


def test_slugs_keep_old_ids_and_tell_new_layouts_apart() -> None:
    assert Layout(1, 4).slug() == "g4/tp1-pp1-ep1"  # every id stored before layouts existed is unchanged
    assert Layout(1, 4, tp=2, sp=True).slug() == "g4/tp2-pp1-ep1-sp"
    slugs = {Layout(1, 8).slug(), Layout(2, 4).slug(), Layout(1, 8, cp=2).slug(), Layout(1, 8, etp=1).slug(),
             Layout(1, 8, pp=2, vp=2).slug(), Layout(1, 8, pp=2).slug()}
    assert len(slugs) == 6 and Layout(2, 4).slug() == "g8-n2/tp1-pp1-ep1"
    assert (Layout(2, 4).world, Layout(2, 4).dp, Layout(1, 8, cp=2).dp) == (8, 8, 4)
    assert Layout(1, 8, tp=2).expert_tp == 2 and Layout(1, 8, tp=2, etp=1).expert_tp == 1
    assert sorted([Layout(2, 4), Layout(1, 8, cp=2), Layout(1, 2)]) == [Layout(1, 2), Layout(1, 8, cp=2), Layout(2, 4)]


def test_three_layouts_of_eight_gpus_plan_render_and_store_as_three_cells(tmp_path: Path, scaling_home: Path) -> None:
    mat, prof = load_matrix(_matrix(tmp_path)), load_profile("ibex")
    run = plan_run(mat, prof, "layouts")
    keys = [p.planned.cell.key for p in run.plans]
    assert keys == ["llama31_8b/data_parallel/lora/g8/tp1-pp1-ep1", "llama31_8b/data_parallel/lora/g8-n2/tp1-pp1-ep1",
                    "llama31_8b/data_parallel/lora/g8/tp1-pp1-ep1-cp2"]
    scripts = [run.jobs[k].script or "" for k in keys]
    assert ["#SBATCH --nodes=1" in scripts[0], "#SBATCH --nodes=2" in scripts[1], "#SBATCH --nodes=1" in scripts[2]] \
        == [True] * 3
    assert "#SBATCH --ntasks-per-node=4" in scripts[1] and "#SBATCH --gpus-per-node=4" in scripts[1]
    argv = [run.jobs[k].argv for k in keys]
    assert "trainer.num_nodes=2" in argv[1] and "trainer.devices=4" in argv[1]
    assert not any(a.startswith("trainer.num_nodes") for a in argv[0] + argv[2])
    assert "trainer.strategy.context_parallel_size=2" in argv[2]
    assert len({p.cell_dir for p in run.plans}) == 3
    store = ResultsStore(f"sqlite:///{tmp_path / 'r.db'}")
    store.create_run(RunInfo("layouts", "layouts", prof, "al", None, __import__("datetime").datetime.now()))
    for i, plan in enumerate(run.plans):
        done = initial_result(plan, "completed")
        done.metrics = CellMetrics(wall_clock_s=100.0 + i, step_time_s=1.0 + i, median_step_time_s=1.0, peak_mem_mib=1.0)
        store.save_cell(done)
    rows = store.cells("layouts")
    assert [r["cell_id"] for r in rows] == keys
    assert [(r["nodes"], r["devices_per_node"], r["cp"]) for r in rows] == [(1, 8, 1), (2, 4, 1), (1, 8, 2)]
    assert len({series_key(r) for r in rows}) == 3
    [table] = scaling_tables(rows).values()
    assert list(table["Nodes x GPUs"]) == ["1x8", "2x4", "1x8"] and list(table["CP"]) == [1, 1, 2]


def test_old_expansion_called_these_duplicates(tmp_path: Path) -> None:
    """Negative control: the three rows differ only in fields the old id dropped; they stay three cells."""
    cells = expand(load_matrix(_matrix(tmp_path)))
    assert len({pc.cell.key for pc in cells}) == 3
    old = {f"{c.cell.model}/{c.cell.track}/{c.cell.peft}/g{c.cell.gpus}/tp{c.cell.tp}-pp{c.cell.pp}-ep{c.cell.ep}"
           for c in cells}
    assert len(old) == 1


def test_a_node_too_small_for_a_cell_asks_for_more_nodes(tmp_path: Path) -> None:
    """On 4-GPU nodes the 1x8 cells are refused with the fix "set nodes: 2"; the 2x4 cell plans."""
    prof = load_profile("ibex").model_copy(update={"gpus_per_node": 4})
    with pytest.raises(ConfigError) as err:
        plan_run(load_matrix(_matrix(tmp_path)), prof, "n")
    assert str(err.value) == ("matrix layouts: cells[0].gpus: 8 GPUs per node exceeds the profile's gpus_per_node 4 "
                              "(and 1 more cells) (fix: set nodes: 2)")  # cells[0] and [2]; the 2x4 cell fits
