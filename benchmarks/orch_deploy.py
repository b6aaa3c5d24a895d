"""Way (d) of ``benchmarks/orchestration.py``: the nightly deployment on a running Prefect server + worker.

Set up once, untimed (a user's server and worker are already running): ``prefect server start`` on a
free port in its own PREFECT_HOME, the ``local-procs`` process pool, ``prefect --no-prompt deploy --all``
of the repository's own ``prefect.yaml`` (deployment ``scaling-matrix/nightly``), ``prefect worker start``
with Prefect's default poll interval (``PREFECT_WORKER_QUERY_SECONDS``, 10 s). Timed: from
``run_deployment`` (what ``prefect deployment run`` calls) until the flow run is final.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from orch_ways import BIN, Trial, ledger

REPO = Path(__file__).resolve().parents[1]
POOL = "local-procs"  # the pool the repository's prefect.yaml names


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthy(api: str, proc: subprocess.Popen[bytes], timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(f"{api}/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"prefect server at {api} did not become healthy")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@contextmanager
def server_and_worker(folder: Path, home: Path) -> Iterator[dict[str, str]]:
    """Yield the environment of a running server with the nightly deployed and a worker polling its pool."""
    folder.mkdir(parents=True, exist_ok=True)
    api = f"http://127.0.0.1:{_free_port()}/api"
    env = {**os.environ, "PREFECT_HOME": str(folder / "prefect"), "PREFECT_API_URL": api,
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "SCALING_HOME": str(home),
           "PWD": str(REPO)}  # prefect.yaml's pull step is "{{ $PWD }}": the tree whose flow runs
    procs: list[subprocess.Popen[bytes]] = []

    def start(name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        with open(folder / f"{name}.log", "wb") as log:
            procs.append(subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
                                          start_new_session=True))
        return procs[-1]

    try:
        port = api.split(":")[2].split("/")[0]
        _healthy(api, start("server", [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1",
                                       "--port", port, "--no-ui"]))
        for argv in (["work-pool", "create", POOL, "--type", "process"], ["--no-prompt", "deploy", "--all"]):
            subprocess.run([str(BIN / "prefect"), *argv], env=env, cwd=REPO, check=True, capture_output=True)
        start("worker", [str(BIN / "prefect"), "worker", "start", "--pool", POOL])
        time.sleep(5)  # the worker registers and starts polling
        yield env
    finally:
        for proc in reversed(procs):
            _stop(proc)


def deployment(env: dict[str, str], matrix: Path, profile: Path, home: Path, n: int) -> Trial:
    """(d) Trigger ``scaling-matrix/nightly`` with this matrix and profile; wait until its run is final."""
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    run_id = f"bench-deploy-{n}-{time.time():.0f}"
    with temporary_settings({PREFECT_API_URL: env["PREFECT_API_URL"]}):
        t0 = time.time()
        flow_run = run_deployment("scaling-matrix/nightly", timeout=0,
                                  parameters={"matrix": str(matrix), "profile": str(profile), "run_id": run_id})
        with get_client(sync_client=True) as client:
            while not (fr := client.read_flow_run(flow_run.id)).state.is_final():
                time.sleep(0.5)
    t_exit = fr.end_time.timestamp() if fr.end_time else time.time()
    pickup = (fr.start_time.timestamp() - t0) if fr.start_time else float("nan")
    submitted, detected, ok = ledger(home / "results.db", run_id)
    return Trial("deployment", n, t0, submitted, detected, t_exit, ok=ok,
                 note=f"{fr.state.name}; worker picked the run up after {pickup:.1f} s", pickup_s=pickup)
