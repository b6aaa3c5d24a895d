"""Chaos tier: faults injected into real runs on the real SLURM, orchestrated through a real ``prefect server``.

Every run here is ``scaling-matrix run`` (the CLI a user types) against one restartable server, on a
one-cell matrix whose job is pinned to the second node (``--nodelist=<host>-2``): the node-level faults
touch only that node, and only after checking that no job but ours runs there; node state is restored in
``finally``. Faults inside the workload come from the tiny engine's ``SCALING_TINY_FAULT`` (test tooling).
Measured figures are printed and, with ``CHAOS_LOG=path``, appended to that file (RELIABILITY.md "Faults").
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from scaling_matrix.adapters.local import free_port
from tests.chaos.slurm_state import jobs_under
from tests.server.conftest import BIN, REPO, _wait_healthy, stop
from tests.slurm.conftest import in_ci, slurm_problem

FIX = REPO / "tests" / "fixtures"
CHAOS_MATRIX = str(FIX / "matrices" / "chaos.yaml")
NODE2 = f"{subprocess.run(['hostname', '-s'], capture_output=True, text=True).stdout.strip()}-2"


def record(test: str, line: str) -> None:
    """Print one measured figure; append it to ``$CHAOS_LOG`` when set."""
    text = f"chaos {test}: {line}"
    print(text)
    if os.environ.get("CHAOS_LOG"):
        with open(os.environ["CHAOS_LOG"], "a") as out:
            out.write(text + "\n")


def wait_for(check: Callable[[], object], timeout_s: float, what: str, run: Run | None = None) -> object:
    """Return ``check()``'s first truthy value; fail naming ``what`` (and ``run``'s output) after ``timeout_s``,
    or at once when ``run``'s process ended first (a refused profile never makes a test wait out its budget)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        if run is not None and run.proc.poll() is not None:
            raise AssertionError(f"{what}: the run exited ({run.proc.returncode}) first\n{run.tail()}")
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout_s:.0f} s\n{run.tail() if run else ''}")


@dataclass
class Server:
    """A real ``prefect server`` that a test may stop and start again on the same port and database."""

    home: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "PREFECT_HOME": str(self.home), "PREFECT_API_URL": self.api_url,
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_LOGGING_TO_API_ENABLED": "true"}

    def start(self) -> float:
        """Start the server; return seconds until /health answered."""
        t0 = time.monotonic()
        with open(self.home / "server.log", "ab") as log:
            self.proc = subprocess.Popen([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1",
                                          "--port", str(self.port)], env=self.env, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        _wait_healthy(self.api_url, self.proc)
        return time.monotonic() - t0

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)
            self.proc = None


@pytest.fixture(scope="session")
def chaos_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One real Prefect server for the chaos tier (a test may restart it)."""
    problem = slurm_problem()
    if problem:
        (pytest.fail if in_ci() else pytest.skip)(problem)
    server = Server(tmp_path_factory.mktemp("chaos-prefect"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


STARTED: list[Run] = []  # every run a test started: teardown stops what is still alive


def _home(tmp_path: Path, imported: bool) -> Iterator[Path]:
    path = tmp_path / "home"
    if imported:
        from scaling_matrix.tiny.checkpoint import import_checkpoint

        import_checkpoint("tiny_llama", "tiny://seed/1234", path / "models" / "tiny_llama", overwrite=True)
    path.mkdir(parents=True, exist_ok=True)
    yield path
    for run in [r for r in STARTED if r.home == path]:
        stop(run.proc)  # SIGTERM first: the CLI scancels its own jobs and stores its cells
    jobs = sorted(set(ledger_jobs(path)) | set(jobs_under(tmp_path)))
    if jobs:
        subprocess.run(["scancel", *jobs], capture_output=True, timeout=60)


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    """A $SCALING_HOME with the tiny model already imported (in-process); teardown scancels what its ledger
    names, so a failing test never leaves the shared cluster busy."""
    yield from _home(tmp_path, imported=True)


@pytest.fixture
def bare_home(tmp_path: Path) -> Iterator[Path]:
    """A $SCALING_HOME without any model: the run imports it (a SLURM job)."""
    yield from _home(tmp_path, imported=False)


def write_profile(directory: Path, fault: str = "", *, nodelist: str | None = NODE2, retries: int = 1,
                  **slurm: object) -> str:
    """Write a SLURM profile for one chaos run (jobs pinned to ``nodelist``, fast polls, short back-off)."""
    settings: dict[str, object] = {"partition": "gpu", "time_limit": "00:10:00", "cpus_per_task": 1,
                                   "poll_interval_s": 0.5}
    if nodelist:
        settings["extra_sbatch_args"] = [f"--nodelist={nodelist}"]
    settings.update(slurm)
    data = {"name": "chaos", "launcher": "slurm", "workload": "tiny", "device": "cpu", "capacity_gpus": 8,
            "retries": retries, "retry_delay_s": 0.5, "cluster": "chaos", "slurm": settings,
            "env": {"SCALING_TINY_FAULT": fault} if fault else {}}
    path = directory / "profile-chaos.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


@dataclass
class Run:
    """A ``scaling-matrix run`` started in the background."""

    proc: subprocess.Popen[bytes]
    log: Path
    home: Path
    started: float

    @property
    def db(self) -> Path:
        return self.home / "results.db"

    def tail(self) -> str:
        """Return the last 3000 characters the CLI printed."""
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""

    def run_id(self) -> str | None:
        """Return the run id the CLI printed (``run <id>: Ctrl-C ...``)."""
        for line in self.log.read_text(errors="replace").splitlines():
            if line.startswith("run ") and ": Ctrl-C" in line:
                return line.split()[1].rstrip(":")
        return None

    def wait(self, timeout_s: float = 240) -> int:
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"scaling-matrix run still running after {timeout_s} s\n{self.tail()}") from None


def start_run(server: Server, home: Path, profile: str, *args: str, matrix: str = CHAOS_MATRIX,
              name: str = "run", env: dict[str, str] | None = None) -> Run:
    """Start ``scaling-matrix run`` against ``server`` in its own process group, output to a file (``env``: extra
    variables, e.g. ``SCALING_DB_URL``; without it the results go to SQLite under ``home``)."""
    full = {k: v for k, v in server.env.items() if k != "SCALING_DB_URL"}
    full.update(SCALING_HOME=str(home), PYTHONUNBUFFERED="1", COLUMNS="200", **(env or {}))
    log = home.parent / f"{name}.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen([str(BIN / "scaling-matrix"), "run", "--matrix", matrix, "--profile", profile,
                                 *args], env=full, cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    STARTED.append(run := Run(proc, log, home, time.monotonic()))
    return run


def ledger_jobs(home: Path, run_id: str | None = None) -> list[str]:
    """Return the SLURM job ids the ledger of ``home`` recorded (for ``run_id``, or every run), oldest first."""
    import sqlite3

    db = home / "results.db"
    if not db.exists():
        return []
    sql = "select job_id from attempts where job_id is not null" + (" and run_id = ?" if run_id else "")
    try:
        with sqlite3.connect(db) as con:
            return [r[0] for r in con.execute(sql + " order by id", (run_id,) if run_id else ())]
    except sqlite3.Error:
        return []


def rows(home: Path, sql: str, *args: object) -> list[dict[str, object]]:
    """Return the rows of ``sql`` on the results DB of ``home`` as dicts ([] when it cannot be read yet)."""
    import sqlite3

    try:
        with sqlite3.connect(home / "results.db") as con:
            con.row_factory = sqlite3.Row
            return [dict(r) for r in con.execute(sql, args)]
    except sqlite3.Error:
        return []


def attempts(home: Path, run_id: str) -> list[dict[str, object]]:
    """Return the ledger rows of ``run_id`` (attempt, job_id, status, failure_class, reason), oldest first."""
    return rows(home, "select attempt, job_id, status, failure_class, reason from attempts where run_id = ? "
                      "order by id", run_id)


def cells(home: Path, run_id: str) -> list[dict[str, object]]:
    """Return the cell rows of ``run_id`` (cell_id, status, failure_class, attempts, job_id, steps_logged)."""
    return rows(home, "select cell_id, status, failure_class, attempts, job_id, reason, metrics from cells "
                      "where run_id = ?", run_id)


def fault_fired(home: Path) -> Path | None:
    """Return the ``once`` marker the tiny engine left when its fault fired (None before)."""
    return next((home / "runs").glob("*/*/.nemo_log.tiny-fault-*.fired"), None) if (home / "runs").exists() else None


__all__ = ["CHAOS_MATRIX", "NODE2", "Run", "STARTED", "Server", "attempts", "cells", "fault_fired", "ledger_jobs",
           "record", "rows", "start_run", "wait_for", "write_profile"]
