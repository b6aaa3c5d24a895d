"""Hostile input through the flow entry points a deployment or a worker uses (not only the CLI)."""

from __future__ import annotations

from pathlib import Path

import pytest

from blocks.cluster import SlurmCluster
from flows.import_models import import_models
from flows.matrix import scaling_matrix
from scaling_matrix.errors import ConfigError
from tests.prefect.test_matrix_flow import QUICK, _profile


def _victim(tmp_path: Path) -> Path:
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "thesis.tex").write_text("years of work\n")
    return victim


@pytest.mark.parametrize(("params", "field"), [
    ({"run_id": "../../escaped"}, "run_id"),
    ({"run_id": "a b"}, "run_id"),
    ({"repeats": 0}, "--repeats"),
    ({"variant": "bogus"}, "--variant"),
])
def test_flow_rejects_bad_parameters_before_anything_runs(params: dict, field: str, scaling_home: Path,
                                                          tmp_path: Path) -> None:
    state = scaling_matrix(matrix=QUICK, profile=_profile(tmp_path), return_state=True, **params)
    assert state.is_failed()
    with pytest.raises(ConfigError) as err:
        state.result()
    assert str(err.value).startswith(field) and not (scaling_home / "runs").exists()
    assert not (tmp_path / "escaped").exists()


def test_flow_never_imports_over_a_user_folder(scaling_home: Path, tmp_path: Path) -> None:
    victim = _victim(tmp_path)
    profile = _profile(tmp_path, model_paths={"tiny_llama": str(victim)})
    state = scaling_matrix(matrix=QUICK, profile=profile, run_id="victim", return_state=True)
    assert state.is_failed()
    with pytest.raises(ConfigError, match="model_paths.tiny_llama: import target .* was not created by"):
        state.result()
    outcome = import_models(QUICK, profile)  # the import flow on its own refuses too (task-level guard)
    assert outcome["tiny_llama"].startswith("failed: ") and "not created by scaling-matrix" in outcome["tiny_llama"]
    assert [p.name for p in victim.iterdir()] == ["thesis.tex"] and (victim / "thesis.tex").read_text()


def test_block_values_are_checked_and_never_echoed() -> None:
    """Flat (pre-profile) block fields and a block's profile are checked as a profile file is, when the
    block is made or loaded, never later; the error names the field, never the value."""
    with pytest.raises(ConfigError) as err:
        SlurmCluster(cluster="lab", partition="gpu; touch /tmp/x", container_image="/img/nemo.sif",
                     env={"DB": "postgresql://u:Pa55w0rd-block@h/db"})
    text = str(err.value)
    assert "slurm-cluster block lab: slurm.partition:" in text and "touch" not in text and "Pa55w0rd" not in text
    assert "slurm-cluster block lab: env.DB:" in text
    with pytest.raises(ConfigError) as err:
        SlurmCluster(profile={"name": "lab", "launcher": "slurm", "workload": "nemo", "device": "gpu",
                              "capacity_gpus": 8, "slurm": {"account": "a$(id)"},
                              "container": {"runtime": "singularity"}})
    text = str(err.value)
    assert "slurm.account:" in text and "container.image:" in text and "$(id)" not in text
