"""The one subprocess boundary for short commands (sbatch, squeue, scancel, ...).

Long-running training processes are started by launchers (``adapters/local.py``), which
write output to per-cell files instead of pipes. Everything else goes through a
:class:`CommandRunner`, injected through constructors so tests can swap it without
monkeypatching ``subprocess``.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class CommandResult:
    """Outcome of one command: the exit code is data, never an exception."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    duration_s: float
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        """True when the command exited 0 and did not time out."""
        return self.returncode == 0 and not self.timed_out


class CommandRunner(Protocol):
    """Runs one argv to completion and returns its result."""

    def run(
        self,
        argv: Sequence[str],
        *,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        timeout_s: float | None = None,
        stdin: str | None = None,
    ) -> CommandResult: ...


class SubprocessRunner:
    """Real runner: ``subprocess.run`` with argv lists (no shell), extra env merged over os.environ."""

    def run(
        self,
        argv: Sequence[str],
        *,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        timeout_s: float | None = None,
        stdin: str | None = None,
    ) -> CommandResult:
        full_env = {**os.environ, **(env or {})}
        start = time.monotonic()
        try:
            proc = subprocess.run(
                list(argv), cwd=cwd, env=full_env, input=stdin, capture_output=True,
                text=True, timeout=timeout_s, check=False,
            )
        except subprocess.TimeoutExpired as exc:
            return CommandResult(tuple(argv), 124, _text(exc.stdout), _text(exc.stderr),
                                 time.monotonic() - start, timed_out=True)
        except FileNotFoundError as exc:
            return CommandResult(tuple(argv), 127, "", str(exc), time.monotonic() - start)
        return CommandResult(tuple(argv), proc.returncode, proc.stdout, proc.stderr,
                             time.monotonic() - start)


def _text(value: str | bytes | None) -> str:
    if value is None:
        return ""
    return value.decode(errors="replace") if isinstance(value, bytes) else value


Handler = Callable[[tuple[str, ...], Mapping[str, str]], tuple[int, str, str]]


@dataclass
class FakeRunner:
    """Test stand-in: answers each argv with ``handler(argv, env) -> (rc, stdout, stderr)``.

    Records every call in :attr:`calls` so tests assert on argv, never on mocks.
    """

    handler: Handler
    calls: list[tuple[str, ...]] = field(default_factory=list)

    def run(self, argv, *, cwd=None, env=None, timeout_s=None, stdin=None) -> CommandResult:  # noqa: D102
        key = tuple(argv)
        self.calls.append(key)
        rc, out, err = self.handler(key, dict(env or {}))
        return CommandResult(key, rc, out, err, 0.0)
