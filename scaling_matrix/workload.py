"""Which executable speaks the workload's grammar for a profile: ``nemo``, the Megatron-Bridge
launcher (``python <root>/scripts/training/run_recipe.py``), the embedded tiny engine, or, for
orchestration benchmarks only, a fixed ``sleep`` (workload ``sleep``: no training, no metrics)."""

from __future__ import annotations

import sys

from scaling_matrix.config.models import ModelSpec, ProfileSpec
from scaling_matrix.render.megatron_bridge import BRIDGE_ROOT, RUN_RECIPE

TINY_PREFIX_MODULE = "scaling_matrix.tiny"
#: The orchestration-benchmark workload: every job is ``sleep <profile.sleep_s>``.
SLEEP = "sleep"
#: How results of the sleep workload are labelled wherever a library/engine is named.
SLEEP_LABEL = "sleep (orchestration benchmark; no training)"


def needs_import(model: ModelSpec) -> bool:
    """Return False for models with nothing to import (workload ``sleep``)."""
    return model.workload != SLEEP


def sleep_argv(profile: ProfileSpec) -> list[str]:
    """Return the argv of a ``sleep`` workload job: ``sleep <sleep_s>`` (coreutils)."""
    return ["sleep", f"{profile.sleep_s:g}"]


def bridge_root(profile: ProfileSpec) -> str:
    """Return the Megatron-Bridge checkout inside the container (profile ``megatron_bridge_root``)."""
    return profile.megatron_bridge_root or BRIDGE_ROOT


def interpreter(profile: ProfileSpec) -> list[str]:
    """Return the Python a Megatron-Bridge profile runs its scripts with (``executable`` replaces it)."""
    return list(profile.executable) if profile.executable else ["python"]


def workload_prefix(profile: ProfileSpec, python: str | None = None) -> list[str]:
    """Return the argv prefix of the fine-tuning command for ``profile`` (``python`` pins the tiny
    engine's interpreter): ``executable`` replaces ``nemo`` (or, for Megatron-Bridge, ``python``)."""
    if profile.workload == "megatron_bridge":
        return [*interpreter(profile), f"{bridge_root(profile)}/{RUN_RECIPE}"]
    if profile.executable:
        return list(profile.executable)
    if profile.workload == "tiny":
        return [python or sys.executable, "-m", TINY_PREFIX_MODULE]
    return ["nemo"]
