"""Config validation: bad input -> ConfigError naming the field and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from scaling_matrix.config.loading import load_matrix, load_profile, preset_names
from scaling_matrix.errors import ConfigError, PresetNotFoundError
from scaling_matrix.matrix import check_cell, expand, plan_cells


def _write(tmp_path: Path, data: dict) -> str:
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


BASE = {
    "name": "t",
    "models": {"tiny_llama": {"factory": "tiny_llama", "family": "dense", "source": "tiny://seed/1",
                              "workload": "tiny"}},
    "cells": [{"model": "tiny_llama", "track": "data_parallel", "gpus": 2}],
}


def test_presets_are_listed_and_valid() -> None:
    assert {"smoke", "workshop"} <= set(preset_names("matrices"))
    assert {"local", "ibex"} <= set(preset_names("profiles"))
    for name in preset_names("matrices"):
        assert plan_cells(load_matrix(name))
    for name in preset_names("profiles"):
        assert load_profile(name).name == name


def test_smoke_is_tiny_dp_lora_on_one_and_two_ranks() -> None:
    cells = plan_cells(load_matrix("smoke"), load_profile("local"))
    assert sorted(pc.cell.gpus for pc in cells) == [1, 2]
    assert {(pc.cell.track, pc.cell.peft, pc.model.workload) for pc in cells} == {
        ("data_parallel", "lora", "tiny")}
    assert all(30 <= pc.cell.max_steps <= 50 for pc in cells)


def test_unknown_field_is_named(tmp_path: Path) -> None:
    bad = {**BASE, "cells": [{"model": "tiny_llama", "track": "data_parallel", "gpus": 2, "gpu": 4}]}
    with pytest.raises(ConfigError) as err:
        expand(load_matrix(_write(tmp_path, bad)))
    assert "cells[0].gpu:" in str(err.value) and "rename it to 'gpus' or remove it" in str(err.value)


@pytest.mark.parametrize(("cell", "field"), [
    ({"gpus": 0}, "cells[0].gpus"),
    ({"gpus": "two"}, "cells[0].gpus"),
    ({"track": "pipeline"}, "cells[0].track"),
    ({"peft": "dora"}, "cells[0].peft"),
    ({"tp": -1}, "cells[0].tp"),
])
def test_invalid_cell_values_name_the_field(tmp_path: Path, cell: dict, field: str) -> None:
    row = {"model": "tiny_llama", "track": "data_parallel", "gpus": 2, **cell}
    with pytest.raises(ConfigError) as err:
        expand(load_matrix(_write(tmp_path, {**BASE, "cells": [row]})))
    assert field in str(err.value)


def test_unknown_model_lists_known_ones(tmp_path: Path) -> None:
    row = {"model": "llama", "track": "data_parallel", "gpus": 1}
    with pytest.raises(ConfigError) as err:
        expand(load_matrix(_write(tmp_path, {**BASE, "cells": [row]})))
    assert "cells[0].model" in str(err.value) and "tiny_llama" in str(err.value)


def test_moe_needs_experts(tmp_path: Path) -> None:
    models = {"m": {"factory": "x", "family": "moe", "source": "s", "workload": "tiny"}}
    with pytest.raises(ConfigError) as err:
        load_matrix(_write(tmp_path, {**BASE, "models": models}))
    assert "models.m" in str(err.value) and "experts" in str(err.value)


def test_duplicate_cells_rejected(tmp_path: Path) -> None:
    row = {"model": "tiny_llama", "track": "data_parallel", "gpus": 1}
    with pytest.raises(ConfigError, match="duplicate"):
        expand(load_matrix(_write(tmp_path, {**BASE, "cells": [row, row]})))


def test_axes_expand_cartesian(tmp_path: Path) -> None:
    data = {**BASE, "cells": [], "axes": [{"model": ["tiny_llama"], "track": ["data_parallel"],
                                           "gpus": [1, 2, 4], "peft": ["lora", "none"]}]}
    cells = expand(load_matrix(_write(tmp_path, data)))
    assert len(cells) == 6 and len({c.cell.key for c in cells}) == 6


def test_missing_preset_names_the_choices() -> None:
    with pytest.raises(PresetNotFoundError) as err:
        load_matrix("nope")
    assert "smoke" in str(err.value) and "matrix" in str(err.value)


def test_profile_capacity_and_workload_checked_before_submit() -> None:
    with pytest.raises(ConfigError, match="workload"):
        plan_cells(load_matrix("workshop"), load_profile("local"))


def test_divisibility_rules() -> None:
    cells = {pc.cell.key: pc for pc in expand(load_matrix("workshop"))}
    assert all(check_cell(pc) == [] for pc in cells.values())
    pc = next(iter(cells.values()))
    bad = type(pc)(pc.cell.model_copy(update={"gpus": 2, "tp": 4}), pc.model)
    assert any("TP·PP·CP" in p for p in check_cell(bad))
    sp = type(pc)(pc.cell.model_copy(update={"sp": True}), pc.model)
    assert any("sequence parallel" in p for p in check_cell(sp))
