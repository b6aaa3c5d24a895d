"""The one place where argv becomes shell text. Everything handed to a shell is quoted here, once."""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping


def shell_join(argv: Iterable[str]) -> str:
    """Return ``argv`` as one shell command line, each word quoted exactly once."""
    return shlex.join([str(a) for a in argv])


def shell_export(env: Mapping[str, str]) -> list[str]:
    """Return ``export K=V`` lines with values quoted once (keys must be identifiers)."""
    lines = []
    for key, value in env.items():
        if not key.isidentifier():
            raise ValueError(f"environment variable name {key!r} is not a valid identifier")
        lines.append(f"export {key}={shlex.quote(str(value))}")
    return lines


#: Cache variables the workshop exports so nothing lands in $HOME (reference/workshop.md §3).
CACHE_VARS = {
    "TORCH_HOME": "torch", "NEMO_DATASETS_CACHE": "datasets", "HF_HOME": "hf_cache",
    "HF_DATASETS_CACHE": "datasets_cache", "TRITON_CACHE_DIR": "triton", "NEMO_HOME": "nemo_cache",
}


def cache_env(cache_dir: str) -> dict[str, str]:
    """Return the workshop's cache variables rooted at ``cache_dir``."""
    return {k: f"{cache_dir}/{sub}" for k, sub in CACHE_VARS.items()}
