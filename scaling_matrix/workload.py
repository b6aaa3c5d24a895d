"""Which executable speaks the NeMo grammar for a profile: ``nemo`` or the embedded tiny engine."""

from __future__ import annotations

import sys

from scaling_matrix.config.models import ProfileSpec

TINY_PREFIX_MODULE = "scaling_matrix.tiny"


def workload_prefix(profile: ProfileSpec, python: str | None = None) -> list[str]:
    """Return the argv prefix replacing ``nemo`` for ``profile`` (``python`` pins the interpreter)."""
    if profile.executable:
        return list(profile.executable)
    if profile.workload == "tiny":
        return [python or sys.executable, "-m", TINY_PREFIX_MODULE]
    return ["nemo"]
