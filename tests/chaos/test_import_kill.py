"""The orchestrator is SIGKILLed while the model import runs as a SLURM job (real SLURM, real Prefect server).

The import stalls after writing the weights and before ``context/io.json`` (the completeness marker;
``SCALING_TINY_FAULT=hang@import``), then ``scaling-matrix run`` is SIGKILLed with its process group.
(a) The import job lives on: ``--resume`` finds it by its ``--comment`` and waits for it instead of
    starting a second import into the same folder (one import job in sacct), then runs the cells.
(b) The import job dies too (scancelled): the folder is half written and never taken as complete;
    ``--resume`` imports again and the run completes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

import pytest

from scaling_matrix.cells import import_comment
from tests.chaos.conftest import Server, cells, record, start_run, wait_for, write_profile
from tests.chaos.slurm_state import assert_sacct, in_queue

pytestmark = [pytest.mark.slurm, pytest.mark.server, pytest.mark.slow, pytest.mark.timeout(400)]


def _import_jobs(target: Path, since: str) -> list[str]:
    """Return the ids of every job submitted since ``since`` (ISO seconds) to import into ``target`` (by its
    comment; an earlier session's job for the same path may still be in slurmctld's memory), oldest first."""
    comment = import_comment(target)
    out = subprocess.run(["scontrol", "-o", "show", "job"], capture_output=True, text=True).stdout
    ids = [_field(rec, "JobId") for rec in out.splitlines()
           if _field(rec, "Comment") == comment and _field(rec, "SubmitTime") >= since]
    return sorted(ids, key=int)


def _field(record: str, name: str) -> str:
    """Return the value of ``name=`` in one ``scontrol -o show job`` record ('' when absent)."""
    return next((w.split("=", 1)[1] for w in record.split() if w.startswith(f"{name}=")), "")


class Killed(NamedTuple):
    """A run SIGKILLed during its import: what the resume needs and what the test checks."""

    run_id: str
    job: str
    target: Path
    profile: str
    since: str  # when the run started (scontrol SubmitTime format)

    def import_jobs(self) -> list[str]:
        return _import_jobs(self.target, self.since)


def _killed_during_import(server: Server, home: Path, tmp_path: Path, fault: str) -> Killed:
    """Start a run whose import stalls mid-write, SIGKILL the CLI; return what the resume needs."""
    profile = write_profile(tmp_path, fault, nodelist=None)
    target, since = home / "models" / "tiny_llama", datetime.now().strftime("%Y-%m-%dT%H:%M:%S")
    run = start_run(server, home, profile, name="import-kill")
    wait_for(lambda: (target / "weights" / "model.safetensors").is_file() and _import_jobs(target, since), 240,
             "the import job writing its weights", run)
    run_id = wait_for(run.run_id, 30, "the run id")
    os.killpg(run.proc.pid, signal.SIGKILL)  # no handler runs: the import job is on its own now
    run.proc.wait()
    (job,) = _import_jobs(target, since)
    assert in_queue([job]) == [job]  # the orchestrator's death did not stop it
    assert not (target / "context" / "io.json").exists()
    return Killed(str(run_id), job, target, profile, since)


def test_a_resume_waits_for_the_running_import_instead_of_importing_twice(chaos_server: Server, bare_home: Path,
                                                                          tmp_path: Path) -> None:
    home = bare_home
    killed = _killed_during_import(chaos_server, home, tmp_path, "hang@import,seconds=20")
    run_id, job, target, profile = killed[:4]
    t0 = time.monotonic()
    resumed = start_run(chaos_server, home, profile, "--resume", run_id, name="import-resume")
    assert resumed.wait(300) == 0, resumed.tail()
    assert killed.import_jobs() == [job]  # attached to it: never a second import into the same folder
    assert_sacct({job: "COMPLETED"})
    assert (target / "context" / "io.json").is_file()
    assert [c["status"] for c in cells(home, run_id)] == ["completed"]
    record("import-kill-a", f"CLI SIGKILLed mid-import; resume attached to import job {job} (1 import job in "
                            f"total) and completed the run {time.monotonic() - t0:.1f} s later")


def test_b_a_half_written_import_is_never_complete_and_is_imported_again(chaos_server: Server, bare_home: Path,
                                                                        tmp_path: Path) -> None:
    home = bare_home
    killed = _killed_during_import(chaos_server, home, tmp_path, "hang@import,once")
    run_id, job, target, profile = killed[:4]
    subprocess.run(["scancel", job], check=True, capture_output=True, timeout=30)  # lost with its orchestrator
    wait_for(lambda: not in_queue([job]), 30, "the import job gone")
    assert (target / "weights").is_dir() and not (target / "context" / "io.json").exists()
    t0 = time.monotonic()
    resumed = start_run(chaos_server, home, profile, "--resume", run_id, name="import-resume")
    assert resumed.wait(300) == 0, resumed.tail()
    first, second = killed.import_jobs()
    assert first == job
    assert_sacct({job: "CANCELLED", second: "COMPLETED"})
    assert (target / "context" / "io.json").is_file()
    assert [c["status"] for c in cells(home, run_id)] == ["completed"]
    record("import-kill-b", f"CLI SIGKILLed mid-import and the import job scancelled: folder left without "
                            f"io.json (not complete); resume imported again (job {second}) and completed the run "
                            f"{time.monotonic() - t0:.1f} s later")
