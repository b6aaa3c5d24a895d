"""Workload ``sleep`` (orchestration benchmarks only): every job is ``sleep <sleep_s>`` on one CPU, no GPU,
nothing imported, never mistaken for training (labelled wherever a library is named)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from scaling_matrix.cells import judge, label_metrics
from scaling_matrix.backends.base import RunEnd
from scaling_matrix.config.loading import load_matrix, load_profile
from scaling_matrix.errors import ConfigError
from scaling_matrix.outcome import FailureClass
from scaling_matrix.planning import plan_run
from scaling_matrix.records import CellMetrics
from scaling_matrix.workload import SLEEP_LABEL

SLEEP_MODEL = {"factory": "sleep", "family": "dense", "source": "none", "workload": "sleep"}


def _inputs(tmp_path: Path, model: dict | None = None, **profile: object) -> tuple[Path, Path]:
    matrix = {"name": "sleepy", "models": {"s": model or SLEEP_MODEL},
              "axes": [{"model": ["s"], "track": ["data_parallel"], "peft": ["lora", "none"], "gpus": [1]}]}
    prof = {"name": "bench", "launcher": "slurm", "workload": "sleep", "device": "cpu", "sleep_s": 2.5,
            "cluster": "local-slurm", "capacity_gpus": 8,
            "slurm": {"partition": "gpu", "time_limit": "00:10:00", "cpus_per_task": 1}, **profile}
    paths = tmp_path / "m.yaml", tmp_path / "p.yaml"
    paths[0].write_text(yaml.safe_dump(matrix))
    paths[1].write_text(yaml.safe_dump(prof))
    return paths


def test_every_job_is_a_sleep_on_one_cpu_without_gpu_or_import(tmp_path: Path, scaling_home: Path) -> None:
    m, p = _inputs(tmp_path)
    run = plan_run(load_matrix(str(m)), load_profile(str(p)), "RUN")
    assert len(run.jobs) == 2 and run.imports == {}
    for plan in run.plans:
        assert plan.argv == ["sleep", "2.5"]
    for job in run.jobs.values():
        assert "sleep 2.5" in job.script and "--cpus-per-task=1" in job.script
        assert "gpu" not in job.script.lower().replace("--partition=gpu", "")  # no GPU asked for


def test_sleep_results_are_labelled_and_judged_without_training_steps(tmp_path: Path, scaling_home: Path) -> None:
    m, p = _inputs(tmp_path, launcher="local", slurm=None)
    plan = plan_run(load_matrix(str(m)), load_profile(str(p)), "RUN").plans[0]
    assert label_metrics(CellMetrics(), plan).library == SLEEP_LABEL
    done = RunEnd((), tmp_path, 0)
    assert judge(plan, done, "")[0].failure_class == FailureClass.COMPLETED
    failed = RunEnd((), tmp_path, 1)
    assert judge(plan, failed, "")[0].failure_class != FailureClass.COMPLETED  # control: exit 1 is no success


@pytest.mark.parametrize(("model", "profile", "field"), [
    ({**SLEEP_MODEL, "source": "hf://org/repo"}, {}, "source"),  # sleep models import nothing
    ({**SLEEP_MODEL, "workload": "tiny"}, {}, "source"),  # 'none' is the sleep workload's only
    (None, {"device": "gpu"}, "device"),  # a sleep never claims a GPU
])
def test_mismatched_sleep_inputs_name_the_field(tmp_path: Path, model: dict | None, profile: dict,
                                                field: str) -> None:
    m, p = _inputs(tmp_path, model, **profile)
    with pytest.raises(ConfigError, match=field):
        load_matrix(str(m)) if model else load_profile(str(p))
