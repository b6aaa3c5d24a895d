"""Golden sbatch scripts for each container runtime, and hostile-value quoting."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from pydantic import ValidationError

from scaling_matrix.cells import job_request, plan_cell
from scaling_matrix.config.loading import load_matrix, load_profile, parse_model
from scaling_matrix.config.models import ContainerSettings
from scaling_matrix.errors import ConfigError, RenderError
from scaling_matrix.matrix import plan_cells
from scaling_matrix.render.container import container_argv
from scaling_matrix.render.sbatch import render_sbatch
from tests.conftest import golden


@pytest.fixture(autouse=True)
def fixed_home(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCALING_HOME", "/scaling")


def _script(matrix: str, profile_name: str, job: str | None = None, gpus: int | None = None,
            **container: object) -> str:
    profile = load_profile(profile_name)
    if container:
        profile = profile.model_copy(update={"container": ContainerSettings(**container)})
    cells = plan_cells(load_matrix(matrix), profile)
    pc = next(c for c in cells if (job is None or c.cell.job_name == job) and (gpus is None or c.cell.gpus == gpus))
    return render_sbatch(job_request(plan_cell("RUN", pc, profile, python="python3")), profile)


CASES = {
    "ibex-singularity-l-lo-4g.sh": ("workshop", "ibex", "l-lo-4g", 4, {}),
    "ibex-singularity-m-lo-8g-mp.sh": ("workshop", "ibex", "m-lo-8g", 8, {}),
    "ibex-apptainer-l-mp-2g.sh": ("workshop", "ibex", "l-mp-2g", 2,
                                  {"runtime": "apptainer", "image": "/images/nemo_25.07.sif",
                                   "binds": ["/data:/data"]}),
    "pyxis-m-lo-2g.sh": ("workshop", "ibex", "m-lo-2g", 2,
                         {"runtime": "pyxis", "image": "nvcr.io#nvidia/nemo:25.07",
                          "binds": ["/sw:/sw", "/data:/data"], "env_passthrough": ["HF_TOKEN"]}),
    "slurm-local-tiny-g2.sh": ("smoke", "slurm-local", None, 2, {}),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_sbatch_golden(name: str) -> None:
    matrix, profile, job, gpus, container = CASES[name]
    script = _script(matrix, profile, job, gpus, **container)
    golden(f"sbatch/{name}", script)
    result = subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True)
    assert result.returncode == 0, result.stderr  # syntactically valid bash


def test_workshop_directives() -> None:
    script = _script("workshop", "ibex", "l-lo-8g", 8)
    for line in ["#SBATCH --nodes=1", "#SBATCH --ntasks-per-node=8", "#SBATCH --gpus-per-node=8",
                 "#SBATCH --cpus-per-task=4", "#SBATCH --time=01:00:00", "#SBATCH --constraint=a100,8gpus",
                 "#SBATCH --reservation=distributedDL", "#SBATCH --mem=256G", "#SBATCH --job-name=l-lo-8g"]:
        assert line in script.splitlines()
    assert "#SBATCH --constraint=a100,4gpus" in _script("workshop", "ibex", "l-lo-2g", 2)
    assert "--ntasks=" not in script and "--gpus-per-task" not in script  # workshop pitfalls


def test_secrets_never_rendered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_supersecret")
    for name in CASES:
        matrix, profile, job, gpus, container = CASES[name]
        assert "hf_supersecret" not in _script(matrix, profile, job, gpus, **container)
    data = {**load_profile("local").model_dump(), "env": {"HF_TOKEN": "x"}}
    with pytest.raises(ConfigError, match="profile: env.HF_TOKEN: is named like a secret") as err:
        parse_model(type(load_profile("local")), data, "profile")
    assert "'x'" not in str(err.value)  # the key is named, never the value


def test_container_requires_image() -> None:
    with pytest.raises(ValidationError, match="runtime 'singularity' needs an image"):
        ContainerSettings(runtime="singularity")
    unchecked = ContainerSettings.model_construct(runtime="singularity", image=None, binds=[], env_passthrough=[])
    with pytest.raises(RenderError, match="container.image"):  # the renderer still refuses on its own
        container_argv(unchecked, ["nemo"])


def test_hostile_paths_quoted_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SCALING_HOME", str(tmp_path / "a'; echo pwned; 'b c"))
    script = _script("smoke", "slurm-local", None, 1)
    assert subprocess.run(["bash", "-n"], input=script, text=True).returncode == 0
    assert "echo pwned" not in [ln.strip() for ln in script.splitlines()]
