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
