"""SLURM backend: every job is an ``sbatch`` of its rendered script; SLURM decides when it runs.

One :class:`~scaling_matrix.adapters.slurm.SlurmClient` per run: ``poll`` is one ``squeue -t all``
for all jobs (``sacct`` only for jobs the controller forgot), ``cancel`` one ``scancel``. Nothing here waits: the run's
watcher polls, so a 40-cell matrix has its 40 jobs queued at once and the scheduler orders them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from scaling_matrix.adapters.slurm import SlurmClient
from scaling_matrix.backends.base import Handle, JobSpec, JobState, RunEnd
from scaling_matrix.errors import RenderError
from scaling_matrix.slurm.states import SlurmState
from scaling_matrix.slurm.status import JobStatus

SCRIPT_NAME = "job.sbatch"
_RUNNING = frozenset({SlurmState.RUNNING, SlurmState.COMPLETING, SlurmState.STAGE_OUT, SlurmState.SIGNALING})


def passthrough_env(names: Iterable[str], environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Return the variables of ``names`` (e.g. HF_TOKEN) that sbatch hands to the job from our
    environment: they travel with the submission and are never written into a script."""
    source = os.environ if environ is None else environ
    return {k: source[k] for k in names if k in source}


class SlurmBackend:
    """Submits, polls, cancels and collects SLURM batch jobs through one client."""

    name = "slurm"
    reattaches = True  # jobs outlive the orchestrator; the ledger finds them again
    enforces_timeout = False

    def __init__(self, client: SlurmClient, poll_interval_s: float = 10.0,
                 submit_env: Mapping[str, str] | None = None) -> None:
        self.client = client
        self.poll_interval_s = poll_interval_s
        self._env = dict(submit_env or {})
        self._seen: dict[str, JobStatus] = {}

    def write_script(self, spec: JobSpec) -> str:
        """Write ``spec``'s rendered script into its folder and return the path (as text)."""
        if spec.script is None:
            raise RenderError(f"job {spec.name} has no rendered batch script")
        spec.workdir.mkdir(parents=True, exist_ok=True)
        path = spec.workdir / SCRIPT_NAME
        path.write_text(spec.script)
        return str(path)

    def submit(self, spec: JobSpec) -> Handle:
        """Return the handle of ``sbatch --parsable --no-requeue [--comment] job.sbatch``.

        Raises:
            SubmissionError: sbatch refused the job (its words are in the message).
        """
        script = self.write_script(spec)
        extra = ["--no-requeue"] + ([f"--comment={spec.comment}"] if spec.comment else [])
        job_id = self.client.submit(script, cwd=spec.workdir, env=self._env, extra_args=extra)
        return Handle(job_id, spec, job_id)

    def test_only(self, spec: JobSpec) -> tuple[bool, str]:
        """Return ``(fits, SLURM's words)`` of ``sbatch --test-only`` for ``spec`` (nothing is queued)."""
        return self.client.test_only(self.write_script(spec), cwd=spec.workdir)

    def poll(self, ids: list[str]) -> dict[str, JobState]:
        """Return every job's state from one scheduler query (statuses kept for :meth:`collect`)."""
        statuses = self.client.statuses(ids)
        self._seen.update(statuses)
        return {i: _job_state(s) for i, s in statuses.items()}

    def status(self, job_id: str) -> JobStatus | None:
        """Return the last status a poll reported for ``job_id``."""
        return self._seen.get(job_id)

    def cancel(self, handles: Iterable[Handle]) -> None:
        """``scancel`` every job of ``handles`` in one call."""
        self.client.cancel([h.job_id or h.id for h in handles])

    def collect(self, handle: Handle, cancelled: bool = False) -> RunEnd:
        """Return how the job ended: its last polled status and its output file."""
        status = self._seen.get(handle.id)
        workdir = handle.spec.workdir
        return RunEnd((workdir / f"slurm-{handle.id}.out",), workdir / "memory",
                      status.exit_code if status else None, status.start_time if status else None,
                      status.end_time if status and status.end_time else datetime.now(UTC),
                      status.elapsed_s if status and status.elapsed_s else None, cancelled=cancelled,
                      scheduler=status)

    def find(self, comment: str) -> str | None:
        """Return the id of the job submitted with ``--comment=comment`` (scontrol, then sacct)."""
        return self.client.find_by_comment(comment)

    def attach(self, job_id: str, spec: JobSpec) -> Handle:
        """Return a handle on job ``job_id`` (submitted by an earlier orchestrator)."""
        return Handle(job_id, spec, job_id)


def _job_state(status: JobStatus) -> JobState:
    if status.is_terminal:
        return JobState.DONE
    return JobState.RUNNING if status.state in _RUNNING else JobState.QUEUED


__all__ = ["SlurmBackend", "passthrough_env"]
