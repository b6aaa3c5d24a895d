"""The ways ``benchmarks/orchestration.py`` runs the same N sleep jobs, each returning a :class:`Trial`.

(a) ``raw``: an ``sbatch --parsable`` loop over our own rendered scripts, then one ``squeue`` per
interval until none is listed; (b) ``submitit`` (PyPI) in its own process, ``as_completed`` at the
same interval; (c) ``cli``: ``scaling-matrix run`` on the ephemeral Prefect API, timestamps from the
results DB (ledger: before each ``sbatch``; cell stored). (d) lives in ``orch_deploy.py``.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from orch_cluster import Rpcs, run

BIN = Path(sys.executable).parent
HERE = Path(__file__).resolve().parent


@dataclass
class Trial:
    """One way's run of the matrix: epoch timestamps per job and the RPCs it cost."""

    way: str
    n: int
    t0: float  # the orchestrator was started
    submitted: dict[str, float]  # job id -> its sbatch returned (ours: the ledger row written just before it)
    detected: dict[str, float]  # job id -> its end was known (ours: the cell stored)
    t_exit: float  # the orchestrator's process ended (raw: its poll loop)
    rpcs: Rpcs = field(default_factory=Rpcs)
    commands: dict[str, int] = field(default_factory=dict)  # the way's own SLURM commands (PATH wrappers)
    ok: int = 0  # jobs that ended well by the way's own account
    note: str = ""
    pickup_s: float | None = None  # deployment: trigger -> the worker started the flow run (Prefect's poll)


def cli_env(home: Path, prefect_home: Path) -> dict[str, str]:
    """Return the environment of a ``scaling-matrix`` process on the ephemeral API."""
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update(SCALING_HOME=str(home), PREFECT_HOME=str(prefect_home), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    return env


def render_scripts(matrix: Path, profile: Path, home: Path, tag: str) -> list[Path]:
    """Return our rendered ``job.sbatch`` of every cell (written into its cell folder, as ours would)."""
    code = ("import sys; from scaling_matrix.config.loading import load_matrix, load_profile;"
            "from scaling_matrix.planning import plan_run;"
            "run = plan_run(load_matrix(sys.argv[1]), load_profile(sys.argv[2]), sys.argv[3]);"
            "[(j.workdir.mkdir(parents=True, exist_ok=True), (j.workdir / 'job.sbatch').write_text(j.script),"
            " print(j.workdir / 'job.sbatch')) for j in run.jobs.values()]")
    out = subprocess.run([sys.executable, "-c", code, str(matrix), str(profile), tag], capture_output=True,
                         text=True, check=True, env={**os.environ, "SCALING_HOME": str(home)}).stdout
    return [Path(line) for line in out.split()]


def raw(scripts: list[Path], interval_s: float) -> Trial:
    """(a) ``sbatch --parsable`` every script, then one ``squeue`` per interval until none is listed."""
    t0, submitted, detected = time.time(), {}, {}
    for script in scripts:
        out = subprocess.run(["sbatch", "--parsable", str(script)], cwd=script.parent, capture_output=True,
                             text=True, check=True).stdout
        submitted[out.strip().split(";")[0]] = time.time()
    pending = set(submitted)
    while pending:
        res = subprocess.run(["squeue", "-h", "-o", "%i", "-j", ",".join(sorted(pending))], capture_output=True,
                             text=True)
        listed = set(res.stdout.split()) if res.returncode == 0 else set()  # rc 1: no id known any more
        now = time.time()
        detected.update({j: now for j in pending - listed})
        pending &= listed
        if pending:
            time.sleep(interval_s)
    return Trial("raw", len(scripts), t0, submitted, detected, time.time(), ok=len(detected))


def submitit(folder: Path, n: int, sleep_s: float, interval_s: float, partition: str) -> Trial:
    """(b) submitit in its own Python process (its start-up and import counted), same command and resources."""
    out = folder / "submitit-trial.json"
    t0 = time.time()
    subprocess.run([sys.executable, str(HERE / "orch_submitit.py"), str(folder), str(n), str(sleep_s),
                    str(interval_s), partition, str(out)], check=True)
    t_exit = time.time()
    doc = json.loads(out.read_text())
    return Trial("submitit", n, t0, doc["submitted"], doc["detected"], t_exit, ok=doc["ok"],
                 note=f"{doc['sacct_calls']} sacct calls by submitit's watcher")


def _epoch(text: str | None) -> float | None:
    if not text:
        return None
    stamp = datetime.fromisoformat(text)
    return (stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)).timestamp()


def ledger(db: Path, run_id: str) -> tuple[dict[str, float], dict[str, float], int]:
    """Return (job -> ledger row written before its sbatch, job -> cell stored, cells completed) of a run."""
    with sqlite3.connect(db) as con:
        rows = con.execute("select job_id, started_at, finished_at from attempts where run_id = ? and job_id "
                           "is not null", (run_id,)).fetchall()
        ok = con.execute("select count(*) from cells where run_id = ? and status = 'completed'", (run_id,)).fetchone()
    submitted = {j: _epoch(s) for j, s, _ in rows}
    detected = {j: _epoch(f) for j, _, f in rows if f}
    return submitted, detected, ok[0]


def run_id_of(log: Path) -> str:
    """Return the run id ``scaling-matrix run`` printed first (``run <id>: ...``)."""
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("run ") and ":" in line:
            return line.split()[1].rstrip(":")
    raise RuntimeError(f"no run id in {log}: {log.read_text(errors='replace')[-2000:]}")


def start_cli(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start ``scaling-matrix ARGS`` in its own process group, output to ``log``."""
    with open(log, "wb") as out:
        return subprocess.Popen([str(BIN / "scaling-matrix"), *args], env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


def cli(matrix: Path, profile: Path, home: Path, prefect_home: Path, n: int) -> Trial:
    """(c) ``scaling-matrix run`` on the ephemeral Prefect API, as a user types it."""
    log = home / f"cli-{n}-{time.time():.0f}.log"
    t0 = time.time()
    proc = start_cli(["run", "--matrix", str(matrix), "--profile", str(profile)], cli_env(home, prefect_home), log)
    rc = proc.wait()
    t_exit = time.time()
    submitted, detected, ok = ledger(home / "results.db", run_id_of(log))
    return Trial("cli", n, t0, submitted, detected, t_exit, ok=ok, note=f"exit {rc}")


def reattach(matrix: Path, profile: Path, home: Path, prefect_home: Path, n: int, say) -> dict[str, float]:
    """Start a run, SIGKILL it (process group: CLI and its temporary server) once all ``n`` jobs are in
    the ledger, resume it, and return how long until every cell is tracked again (re-attached: stored
    running with its job after the resume started); the resumed run is then cancelled (SIGTERM)."""
    env, log = cli_env(home, prefect_home), home / f"reattach-{time.time():.0f}.log"
    proc = start_cli(["run", "--matrix", str(matrix), "--profile", str(profile)], env, log)
    db = home / "results.db"
    while proc.poll() is None and len(_ids(db, run_id := _try_run_id(log))) < n:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    jobs = _ids(db, run_id)
    say(f"reattach: killed the run with {len(jobs)} jobs in the ledger")
    t0 = time.time()
    resumed = start_cli(["run", "--matrix", str(matrix), "--profile", str(profile), "--resume", run_id], env,
                        home / "resumed.log")
    while time.time() - t0 < 300 and _tracked(db, run_id, t0) < n:
        time.sleep(0.05)
    tracked = time.time() - t0
    os.kill(resumed.pid, signal.SIGTERM)  # the CLI only (its temporary server must outlive the graceful cancel)
    try:
        resumed.wait(timeout=120)
    finally:
        _kill_group(resumed)
    left = [j for j in run(["squeue", "-h", "-o", "%i"]).split() if j in jobs]
    if left:
        subprocess.run(["scancel", *left], check=False)
    return {"jobs": len(jobs), "tracked_again_s": tracked}


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL whatever is left of ``proc``'s process group (its temporary server)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def _try_run_id(log: Path) -> str:
    try:
        return run_id_of(log)
    except (RuntimeError, FileNotFoundError):
        return ""


def _ids(db: Path, run_id: str) -> set[str]:
    if not run_id or not db.exists():
        return set()
    with sqlite3.connect(db) as con:
        return {r[0] for r in con.execute("select job_id from attempts where run_id = ? and job_id is not null",
                                          (run_id,))}


def _tracked(db: Path, run_id: str, since: float) -> int:
    """Return how many cells of ``run_id`` were re-attached after ``since``: stored running with their job
    again, or (their job ended meanwhile) stored final by the resumed run."""
    with sqlite3.connect(db) as con:
        running = con.execute("select started_at from cells where run_id = ? and status = 'running'",
                              (run_id,)).fetchall()
        final = con.execute("select finished_at from attempts where run_id = ? and finished_at is not null",
                            (run_id,)).fetchall()
    return sum(1 for (t,) in running + final if (_epoch(t) or 0) >= since)


_EMPTY_FLOW = """
import json, time
t0 = time.time()
from prefect import flow
t1 = time.time()
flow(name="empty")(lambda: None)()
print(json.dumps({"import_prefect_s": t1 - t0, "empty_flow_s": time.time() - t1}))
"""


def prefect_bound(home: Path, prefect_home: Path, repeats: int = 3) -> dict[str, float]:
    """Return the floor any flow run on the ephemeral API pays (median of ``repeats`` fresh processes):
    process start to exit, ``import prefect``, and an empty flow (temporary server start, flow run)."""
    walls, parts = [], []
    for _ in range(repeats):
        t0 = time.time()
        out = subprocess.run([sys.executable, "-c", _EMPTY_FLOW], env=cli_env(home, prefect_home),
                             capture_output=True, text=True, check=True).stdout
        walls.append(time.time() - t0)
        parts.append(json.loads(out.strip().splitlines()[-1]))
    median = sorted(range(repeats), key=walls.__getitem__)[repeats // 2]
    return {"empty_flow_process_s": walls[median], **parts[median]}
