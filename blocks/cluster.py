"""``SlurmCluster`` block: a validated SLURM profile saved in Prefect; ``--profile block:NAME`` loads it.

The block holds one :class:`~scaling_matrix.config.models.ProfileSpec` (every field, validator and
message of a profile YAML file; nothing declared twice). Example::

    from blocks.cluster import SlurmCluster
    from scaling_matrix.config.loading import load_profile

    SlurmCluster(profile=load_profile("my-cluster.yaml")).save("my-cluster")
    # then: scaling-matrix run --profile block:my-cluster, or the nightly with profile=block:my-cluster

Blocks saved before the profile moved in (flat ``cluster``, ``partition``, ``container_image``, ...
fields) still load: their values are read into a profile with the defaults they had.
"""

from __future__ import annotations

import re
from typing import Any

from prefect.blocks.core import Block
from pydantic import Field, model_validator

from scaling_matrix.config.loading import load_profile, profile_from_data
from scaling_matrix.config.models import ProfileSpec
from scaling_matrix.config.secrets import shown
from scaling_matrix.errors import ConfigError

BLOCK_PREFIX = "block:"
BLOCK_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,99}")
_LEGACY_SLURM = ("partition", "account", "qos", "reservation", "constraint", "constraint_by_gpus", "time_limit",
                 "cpus_per_task", "mem", "extra_sbatch_args", "modules", "poll_interval_s")
_LEGACY_CONTAINER = {"container_runtime": "runtime", "container_image": "image", "container_binds": "binds",
                     "env_passthrough": "env_passthrough"}
_LEGACY_PROFILE = ("gpus_per_node", "gpu_memory_gib", "capacity_gpus", "env", "models_dir", "model_paths", "retries")
_LEGACY_DEFAULTS: dict[str, Any] = {"container_runtime": "singularity", "env_passthrough": ["HF_TOKEN"],
                                    "poll_interval_s": 30.0, "retries": 2, "capacity_gpus": 64,
                                    "gpu_memory_gib": 80, "gpus_per_node": 8}
_LEGACY_KEYS = {"cluster", *_LEGACY_SLURM, *_LEGACY_CONTAINER, *_LEGACY_PROFILE}


def legacy_profile(data: dict[str, Any]) -> dict[str, Any]:
    """Return the profile a flat (pre-profile) block's fields describe, with the defaults it had."""
    flat = {**_LEGACY_DEFAULTS, **{k: v for k, v in data.items() if v is not None}}
    cluster = flat.get("cluster")
    return {"name": cluster, "launcher": "slurm", "workload": "nemo", "device": "gpu", "cluster": cluster,
            **{k: flat[k] for k in _LEGACY_PROFILE if k in flat},
            "slurm": {k: flat[k] for k in _LEGACY_SLURM if k in flat},
            "container": {new: flat[old] for old, new in _LEGACY_CONTAINER.items() if old in flat}}


class SlurmCluster(Block):
    """A SLURM cluster's scaling-matrix profile (no secrets: HF_TOKEN comes from the environment/Secret)."""

    _block_type_slug = "slurm-cluster"
    _description = "A scaling-matrix profile for a SLURM cluster (partition, account, container, ...)."

    profile: ProfileSpec = Field(description="the profile, validated exactly like a profile YAML file "
                                 "(launcher: slurm)")

    @model_validator(mode="before")
    @classmethod
    def _checked_profile(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        raw = data.get("profile")
        if raw is None and "cluster" in data:  # a block saved before the profile moved in
            raw, data = legacy_profile(data), {k: v for k, v in data.items() if k not in _LEGACY_KEYS}
        name = raw.get("name") if isinstance(raw, dict) else getattr(raw, "name", None)
        origin = f"slurm-cluster block {shown(str(name or '?'))}"
        profile = profile_from_data(raw, origin)  # ConfigError naming the field, never its value
        if profile.launcher != "slurm":
            raise ConfigError(f"{origin}: launcher", "must be 'slurm' in a SlurmCluster block",
                              "set launcher: slurm (local profiles are YAML files or presets)")
        return {**data, "profile": profile}

    def to_profile(self) -> ProfileSpec:
        """Return the block's validated, Prefect-free profile."""
        return self.profile


def resolve_profile(name_or_path: str) -> ProfileSpec:
    """Return the profile ``name_or_path`` names: ``block:NAME`` (a saved SlurmCluster), a preset or a YAML path.

    Raises:
        ConfigError: the block name is not a block name, or no such block can be loaded.
    """
    if not name_or_path.startswith(BLOCK_PREFIX):
        return load_profile(name_or_path)
    name = name_or_path[len(BLOCK_PREFIX):]
    if not BLOCK_NAME.fullmatch(name):
        raise ConfigError("--profile", "is not a block name after 'block:'",
                          "use block:NAME with lower-case letters, digits and '-' (the name it was saved as)")
    try:
        block = SlurmCluster.load(name)
    except (ValueError, RuntimeError) as exc:
        raise ConfigError("--profile", f"no SlurmCluster block named '{name}' could be loaded ({type(exc).__name__})",
                          "save one with SlurmCluster(profile=...).save(NAME) or use a preset/YAML file") from None
    return block.profile


__all__ = ["BLOCK_PREFIX", "SlurmCluster", "legacy_profile", "resolve_profile"]
