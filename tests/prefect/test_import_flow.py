"""``import-models`` under prefect_test_harness: the real tiny import, once per model of the chosen variant."""

from __future__ import annotations

from pathlib import Path

import yaml

from flows.import_models import import_models
from tests.prefect.test_matrix_flow import _profile

MATRIX = {
    "name": "variant-models",
    "models": {"tiny_llama": {"factory": "tiny_llama", "family": "dense", "source": "tiny://seed/1234",
                              "workload": "tiny"},
               "tiny_mixtral": {"factory": "tiny_mixtral", "family": "moe", "experts": 8, "source": "tiny://seed/1234",
                                "workload": "tiny"}},
    "defaults": {"max_steps": 4, "global_batch_size": 4},
    # only the corrected variant of this cell uses tiny_mixtral
    "cells": [{"model": "tiny_llama", "track": "data_parallel", "peft": "lora", "gpus": 1,
               "corrected": {"model": "tiny_mixtral"}}],
}


def test_import_models_follows_the_variant(scaling_home: Path, tmp_path: Path) -> None:
    matrix = tmp_path / "matrix.yaml"
    matrix.write_text(yaml.safe_dump(MATRIX))
    profile = _profile(tmp_path)
    assert import_models(str(matrix), profile) == {"tiny_llama": "imported"}
    assert import_models(str(matrix), profile, "corrected") == {"tiny_mixtral": "imported"}
    assert import_models(str(matrix), profile, "corrected") == {"tiny_mixtral": "skipped"}  # idempotent
