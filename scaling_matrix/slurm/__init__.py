"""Pure SLURM code: job states and parsers for scheduler text (no subprocess, no prefect)."""

from __future__ import annotations

from scaling_matrix.slurm.states import SlurmState
from scaling_matrix.slurm.status import JobStatus
from scaling_matrix.slurm.text import (
    SACCT_FIELDS,
    SQUEUE_FORMAT,
    job_ids_with_comment,
    parse_duration,
    parse_exit_code,
    parse_jobcomp,
    parse_key_values,
    parse_sacct,
    parse_sbatch_job_id,
    parse_sbatch_test_only,
    parse_scontrol_job,
    parse_scontrol_jobs,
    parse_squeue,
)

__all__ = [
    "SACCT_FIELDS", "SQUEUE_FORMAT", "JobStatus", "SlurmState", "job_ids_with_comment", "parse_duration", "parse_exit_code",
    "parse_jobcomp", "parse_key_values", "parse_sacct", "parse_sbatch_job_id", "parse_sbatch_test_only",
    "parse_scontrol_job", "parse_scontrol_jobs", "parse_squeue",
]
