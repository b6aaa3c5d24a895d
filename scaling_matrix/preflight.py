"""Preflight: ask SLURM whether it would accept every job of a run, before submitting any.

``sbatch --test-only`` validates a request against the live cluster (partition, account, QOS,
limits, constraints, node counts, GRES) without queueing it. Every cell and every import of the
run is tested; the rejections come back per cell in SLURM's own words, and the run is refused
as a whole (nothing submitted, no run stored) when any job would be.
"""

from __future__ import annotations

from dataclasses import dataclass

from scaling_matrix.adapters.runner import SubprocessRunner
from scaling_matrix.adapters.slurm import SlurmClient
from scaling_matrix.backends.slurm import SlurmBackend
from scaling_matrix.config.models import ProfileSpec
from scaling_matrix.errors import ConfigError, PreflightRejected, Problem
from scaling_matrix.planning import RunPlan

PREFLIGHT_FIX = ("change the cell (gpus, nodes) or the profile's slurm settings (partition, account, qos, "
                 "constraint, mem, cpus_per_task, time_limit) until sbatch --test-only accepts it")


def wants_preflight(profile: ProfileSpec, requested: bool | None) -> bool:
    """Return whether to preflight: as requested, else the profile's ``slurm.preflight``.

    Raises:
        ConfigError: preflight was requested for a profile that does not use SLURM.
    """
    if profile.slurm is None or profile.launcher != "slurm":
        if requested:
            raise ConfigError("--preflight", f"profile '{profile.name}' does not submit to SLURM",
                              "drop --preflight, or use a SLURM profile (e.g. slurm-local or block:NAME)")
        return False
    return profile.slurm.preflight if requested is None else requested


@dataclass(frozen=True)
class Verdict:
    """SLURM's answer for one job of the run."""

    job: str  # the cell key, or ``import <model>``
    fits: bool
    message: str  # SLURM's words (``sbatch: Job 12 to start at ...`` / ``allocation failure: ...``)


def preflight(run: RunPlan, backend: SlurmBackend) -> list[Verdict]:
    """Return SLURM's verdict on every job of ``run`` (scripts are written into their folders)."""
    jobs = {**{f"import {name}": spec for name, spec in run.imports.items()}, **run.jobs}
    out = []
    for name, spec in jobs.items():
        fits, message = backend.test_only(spec)
        out.append(Verdict(name, fits, message))
    return out


def test_every_job(run: RunPlan) -> list[Verdict]:
    """Return SLURM's verdict on every job of ``run`` from the live cluster (``sbatch --test-only``)."""
    return preflight(run, SlurmBackend(SlurmClient(SubprocessRunner())))


def require_fit(run: RunPlan, verdicts: list[Verdict]) -> None:
    """Raise :class:`PreflightRejected` with one line per refused job (SLURM's words), else return."""
    refused = [Problem(f"preflight: cell {v.job}" if not v.job.startswith("import ") else f"preflight: {v.job}",
                       f"sbatch --test-only refused it: {v.message}", PREFLIGHT_FIX)
               for v in verdicts if not v.fits]
    if refused:
        raise PreflightRejected.of([*refused, Problem(
            f"preflight: run {run.run_id}", f"{len(refused)} of {len(verdicts)} jobs would be refused; "
            "nothing was submitted", "fix the lines above, or run without --preflight to submit the rest")])


__all__ = ["PREFLIGHT_FIX", "Verdict", "preflight", "require_fit", "test_every_job", "wants_preflight"]
