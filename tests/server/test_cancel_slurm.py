"""Cancel reaches SLURM from every entry point a user has, and leaves a true record.

Real ``prefect server``, real SLURM, the real CLI. Each path starts the 2-cell quick matrix on
SLURM (cells held by ``flaky_nemo.py``'s ``sleep`` fault, a named test stand-in in front of the
real tiny engine), waits until both jobs are in ``squeue``, cancels, then asserts: no job of
the run in ``squeue`` within 10 s, every cell stored ``cancelled``, the run stored ``cancelled``
and (where a Prefect API outlives the run) the flow run Cancelled. Latencies are printed and,
with ``CANCEL_LATENCY_LOG=path``, appended to that file.

  (a) served deployment (``python -m deployments.nightly``) + ``prefect flow-run cancel``
  (b) work pool + process worker + ``prefect flow-run cancel``
  (c) ``scaling-matrix run`` against the server + ``prefect flow-run cancel``
  (d) ``scaling-matrix run`` on the ephemeral API + SIGTERM, or Ctrl-C (SIGINT to its process group)
  (e) ``scaling-matrix run`` SIGKILLed, then ``scaling-matrix cancel RUN_ID``
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.prefect.test_slurm_flow import QUICK, write_profile
from tests.server import cancel_helpers as ch
from tests.server.conftest import BIN, PrefectServer, Procs
from tests.slurm.conftest import in_ci, slurm_problem

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.server, pytest.mark.slurm, pytest.mark.slow]

DEPLOY = """
import sys
from prefect import flow
flow.from_source(source=sys.argv[1], entrypoint="flows/matrix.py:scaling_matrix").deploy(
    name="cancel-test", work_pool_name="cancel-pool", parameters={"matrix": sys.argv[2], "profile": sys.argv[3]})
"""


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One $SCALING_HOME for the module: the tiny model is imported (a SLURM job) only once.
    Teardown scancels every job its ledger names, so a failing test never leaves the shared
    cluster busy."""
    problem = slurm_problem()
    if problem:
        (pytest.fail if in_ci() else pytest.skip)(problem)
    path = tmp_path_factory.mktemp("cancel-home")
    yield path
    jobs = ch.all_ledger_jobs(path / "results.db")
    if jobs:
        subprocess.run(["scancel", *jobs], capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def profile(tmp_path_factory: pytest.TempPathFactory) -> str:
    return write_profile(tmp_path_factory.mktemp("cancel-profile"), "slurm", faults="1=sleep,2=sleep")


def _record(path: str, latency_s: float) -> None:
    line = f"cancel latency {path}: {latency_s:.2f} s (cancel issued -> no job of the run in squeue)"
    print(line)
    if os.environ.get("CANCEL_LATENCY_LOG"):
        with open(os.environ["CANCEL_LATENCY_LOG"], "a") as out:
            out.write(line + "\n")


def _cancel_through_api(server: PrefectServer, env: dict[str, str], started: ch.Started, path: str,
                        log: Path, home: Path) -> None:
    """``prefect flow-run cancel`` as a user types it, then the checks every path shares."""
    t0 = time.monotonic()
    res = subprocess.run([str(BIN / "prefect"), "flow-run", "cancel", started.flow_run_id], env=env,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr
    _record(path, ch.wait_jobs_gone(started.jobs, t0, log))
    ch.assert_cancelled_record(home / "results.db", started.run_id)
    assert ch.flow_run_final_state(server.api_url, started.flow_run_id) == "CANCELLED", log.read_text()[-3000:]


def test_a_served_deployment(prefect_server: PrefectServer, home: Path, profile: str, procs: Procs) -> None:
    env = {**prefect_server.env, "SCALING_HOME": str(home)}
    procs.start("serve", [sys.executable, "-m", "deployments.nightly", "--matrix", QUICK, "--profile", profile],
                env)
    for _ in range(60):
        res = subprocess.run([str(BIN / "prefect"), "deployment", "run", "scaling-matrix/nightly"], env=env,
                             capture_output=True, text=True)
        if res.returncode == 0:
            break
        time.sleep(1)
    flow_run_id = ch.flow_run_id_from(res.stdout)
    log = procs.tmp / "serve.log"
    started = ch.wait_started(home, lambda: (r, flow_run_id) if (r := ch.run_of_flow_run(home, flow_run_id))
                              else None, log=log)
    _cancel_through_api(prefect_server, env, started, "a served deployment", log, home)


def test_b_worker_deployment(prefect_server: PrefectServer, home: Path, profile: str, procs: Procs) -> None:
    env = {**prefect_server.env, "SCALING_HOME": str(home)}
    run = lambda *a: subprocess.run(a, env=env, cwd=REPO, capture_output=True, text=True)  # noqa: E731
    assert run(str(BIN / "prefect"), "work-pool", "create", "cancel-pool", "--type", "process").returncode == 0
    res = run(sys.executable, "-c", DEPLOY, str(REPO), QUICK, profile)
    assert res.returncode == 0, res.stderr[-2000:]
    _, log = procs.start("worker", [str(BIN / "prefect"), "worker", "start", "--pool", "cancel-pool"], env)
    flow_run_id = ch.flow_run_id_from(run(str(BIN / "prefect"), "deployment", "run",
                                          "scaling-matrix/cancel-test").stdout)
    started = ch.wait_started(home, lambda: (r, flow_run_id) if (r := ch.run_of_flow_run(home, flow_run_id))
                              else None, log=log)
    _cancel_through_api(prefect_server, env, started, "b worker deployment", log, home)


def _cli_run(procs: Procs, name: str, env: dict[str, str], profile: str) -> tuple[subprocess.Popen[bytes], Path]:
    return procs.start(name, [str(BIN / "scaling-matrix"), "run", "--matrix", QUICK, "--profile", profile], env)


def test_c_cli_run_against_server(prefect_server: PrefectServer, home: Path, profile: str, procs: Procs) -> None:
    env = {**prefect_server.env, "SCALING_HOME": str(home)}
    t_start = time.time()
    proc, log = _cli_run(procs, "cli-server", env, profile)
    started = ch.wait_started(home, lambda: ch.newest_run(home, t_start), log=log)
    _cancel_through_api(prefect_server, env, started, "c scaling-matrix run + server", log, home)
    assert proc.wait(timeout=60) == 130, log.read_text()[-3000:]
    assert f"run {started.run_id} ended Cancelled" in log.read_text()


@pytest.mark.parametrize("how", ["SIGTERM", "Ctrl-C"])
def test_d_cli_run_ephemeral_signal(how: str, home: Path, profile: str, procs: Procs, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update(SCALING_HOME=str(home), PREFECT_HOME=str(tmp_path / "prefect-home"))
    t_start = time.time()
    proc, log = _cli_run(procs, "cli-ephemeral", env, profile)
    started = ch.wait_started(home, lambda: ch.newest_run(home, t_start), log=log)
    t0 = time.monotonic()
    if how == "SIGTERM":
        os.kill(proc.pid, signal.SIGTERM)  # `kill PID`, a batch system's time limit
    else:  # a terminal's Ctrl-C: SIGINT to the whole foreground group, the ephemeral server included
        os.killpg(proc.pid, signal.SIGINT)
    _record(f"d scaling-matrix run (ephemeral) + {how}", ch.wait_jobs_gone(started.jobs, t0, log))
    assert proc.wait(timeout=60) == 130, log.read_text()[-3000:]
    ch.assert_cancelled_record(home / "results.db", started.run_id)
    assert f"run {started.run_id} ended Cancelled" in log.read_text(), log.read_text()[-3000:]


def test_e_cancel_command_after_sigkill(home: Path, profile: str, procs: Procs, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update(SCALING_HOME=str(home), PREFECT_HOME=str(tmp_path / "prefect-home"))
    t_start = time.time()
    proc, log = _cli_run(procs, "cli-killed", env, profile)
    started = ch.wait_started(home, lambda: ch.newest_run(home, t_start), log=log)
    os.killpg(proc.pid, signal.SIGKILL)  # the orchestrator dies without running any handler
    proc.wait()
    time.sleep(2)
    assert ch.in_queue(started.jobs) == started.jobs  # negative control: nothing else cancels them
    t0 = time.monotonic()
    res = subprocess.run([str(BIN / "scaling-matrix"), "cancel", started.run_id], env=env, cwd=REPO,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr
    _record("e scaling-matrix cancel RUN_ID after SIGKILL", ch.wait_jobs_gone(started.jobs, t0, log))
    ch.assert_cancelled_record(home / "results.db", started.run_id)
    assert f"run {started.run_id} cancelled" in res.stdout
