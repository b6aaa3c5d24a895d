"""Typed errors with actionable messages.

Tree::

    ScalingError
    ├── ConfigError            bad user input (names the field and the fix)
    │   ├── PresetNotFoundError
    │   └── PreflightRejected  SLURM would refuse some cells (sbatch --test-only, its own words)
    ├── RenderError            a command cannot be rendered for this cell/profile
    ├── LaunchError            a launcher could not start a job or process
    │   └── SubmissionError    sbatch (or another scheduler call) failed
    ├── SchedulerParseError    scheduler text we could not understand
    └── StoreError             results database problems
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class ScalingError(Exception):
    """Base class of every error this project raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One problem with user input: where (a YAML key path or a CLI flag), what, and how to fix it."""

    field: str
    problem: str
    fix: str = ""

    def line(self) -> str:
        """Return the one-line message ``field: problem (fix: ...)``."""
        return f"{self.field}: {self.problem}" + (f" (fix: {self.fix})" if self.fix else "")


class ConfigError(ScalingError):
    """Invalid configuration; the message names the field and how to fix it, one line per problem."""

    def __init__(self, field: str, problem: str, fix: str = "", *, more: Sequence[Problem] = ()) -> None:
        self.problems = [Problem(field, problem, fix), *more]
        self.field = field
        self.problem = problem
        self.fix = fix
        super().__init__("\n".join(p.line() for p in self.problems))

    @classmethod
    def of(cls, problems: Sequence[Problem]) -> ConfigError:
        """Return one error carrying every problem in ``problems`` (at least one)."""
        first, *rest = problems
        return cls(first.field, first.problem, first.fix, more=rest)


class PresetNotFoundError(ConfigError):
    """A named matrix or profile preset does not exist."""


class PreflightRejected(ConfigError):
    """``sbatch --test-only`` refused one or more cells; nothing was submitted (one line per cell)."""


class RenderError(ScalingError):
    """A command or script cannot be rendered for a cell on a profile."""


class LaunchError(ScalingError):
    """A job or process could not be started."""


class SubmissionError(LaunchError):
    """A scheduler submission command failed."""

    def __init__(self, argv: list[str], returncode: int, stderr: str) -> None:
        self.argv = argv
        self.returncode = returncode
        self.stderr = stderr
        tail = stderr.strip()[-500:]
        super().__init__(f"{argv[0]} exited {returncode}: {tail}")


class SchedulerParseError(ScalingError):
    """Scheduler output could not be parsed."""

    def __init__(self, what: str, text: str) -> None:
        self.text = text
        super().__init__(f"cannot parse {what}: {text[:300]!r}")


class StoreError(ScalingError):
    """Results database problem."""
