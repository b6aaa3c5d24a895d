"""Baseline (b) of ``benchmarks/orchestration.py``: N ``sleep S`` jobs through submitit (PyPI), run as its
own process so that its start-up and import are counted like ours.

Usage: ``python orch_submitit.py FOLDER N S INTERVAL PARTITION OUT.json``. One ``executor.submit`` (one
``sbatch``) per job, 1 CPU, no GPU; then ``submitit.helpers.as_completed`` at INTERVAL seconds (each
round checks every job's result file, and submitit's watcher runs ``sacct`` when its back-off allows).
Writes epoch timestamps per job id (sbatch returned; end seen) and how many jobs returned their output.
"""

import json
import sys
import time

import submitit
from submitit.helpers import CommandFunction, as_completed


def main(folder: str, n: int, sleep_s: float, interval_s: float, partition: str, out: str) -> None:
    executor = submitit.AutoExecutor(folder=folder, cluster="slurm")
    executor.update_parameters(slurm_partition=partition, nodes=1, tasks_per_node=1, cpus_per_task=1,
                               timeout_min=60, name="submitit-sleep")
    jobs, submitted, detected = [], {}, {}
    for _ in range(n):
        job = executor.submit(CommandFunction(["sleep", f"{sleep_s:g}"]))
        submitted[job.job_id] = time.time()
        jobs.append(job)
    ok = 0
    for job in as_completed(jobs, poll_frequency=interval_s):
        detected[job.job_id] = time.time()
        try:
            job.result()
            ok += 1
        except Exception as exc:  # noqa: BLE001 - counted, reported by the caller
            print(f"job {job.job_id} failed: {exc}", file=sys.stderr)
    doc = {"submitted": submitted, "detected": detected, "ok": ok,
           "sacct_calls": submitit.SlurmJob.watcher.num_calls}
    with open(out, "w") as fh:
        json.dump(doc, fh)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), sys.argv[5], sys.argv[6])
