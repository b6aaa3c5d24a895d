"""Orchestration cost on the real SLURM: raw sbatch vs submitit vs ``scaling-matrix`` (CLI and deployment).

Command (documented in BENCHMARKS.md; the whole default set takes ~25 min on the 2-core machine)::

    .venv/bin/python benchmarks/orchestration.py                 # N = 4, 32 (S = 10 s), 200 (S = 2 s)
    .venv/bin/python benchmarks/orchestration.py --sizes 4 --sleep 1 --reattach 4 --plan 8   # smoke

Every way runs the same N one-CPU, no-GPU jobs of the ``sleep`` workload (``sleep S``: an
orchestration stand-in, labelled ``workload: sleep`` in every row and never a training result),
one after the other in this invocation, at the same poll interval: (a) raw ``sbatch --parsable``
loop + one ``squeue`` per interval, (b) submitit, (c) ``scaling-matrix run`` (ephemeral Prefect
API), (d) the ``scaling-matrix/nightly`` deployment on a running server + process worker. Then the
re-attach after SIGKILL (N = ``--reattach``) and ``scaling-matrix plan`` of a ``--plan``-cell matrix
(sleep, and NeMo on the ibex profile). The cluster caps jobs at the host's cores (2 at a time), the
same for every way. Prints one markdown table and writes every number to ``--out`` (JSON).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import orch_cluster as cl  # noqa: E402
import orch_ways as ways  # noqa: E402
from orch_report import metrics, table, with_ratios  # noqa: E402

WAYS = ("raw", "submitit", "cli", "deployment")
COMMAND_LOG = Path("/dev/null")  # set by main: every SLURM command of every way is logged there


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="4,32,200", help="cell counts N, multiples of 4")
    p.add_argument("--sleep", type=float, default=10.0, help="S: seconds each job sleeps (N < 100)")
    p.add_argument("--sleep-large", type=float, default=2.0, help="S for N >= 100")
    p.add_argument("--interval", type=float, default=2.0, help="poll interval of every way (ours: profile)")
    p.add_argument("--ways", default=",".join(WAYS), help=f"subset of {','.join(WAYS)}")
    p.add_argument("--reattach", type=int, default=32, help="N of the SIGKILL + resume case (0: skip)")
    p.add_argument("--reattach-sleep", type=float, default=30.0)
    p.add_argument("--plan", type=int, default=200, help="cells of the plan timing (0: skip)")
    p.add_argument("--work", type=Path, default=None, help="working folder (default: a new one under /tmp)")
    p.add_argument("--out", type=Path, default=Path("orchestration-results.json"))
    p.add_argument("--wait-idle", type=float, default=900, help="seconds to wait for others' jobs to leave")
    p.add_argument("--partition", default="gpu")
    p.add_argument("--tree", type=Path, default=None, help="run another checkout of the project (e.g. a "
                   "`git archive` of an older commit) through this venv: PYTHONPATH and the deployment's folder")
    return p.parse_args(argv)


def warm_up(home: Path, prefect_home: Path) -> None:
    """Create the results DB and the ephemeral API's DB once (a user's are there already); untimed."""
    env = ways.cli_env(home, prefect_home)
    subprocess.run([str(ways.BIN / "scaling-matrix"), "runs"], env=env, capture_output=True, check=True)
    subprocess.run([str(ways.BIN / "prefect"), "server", "database", "upgrade", "-y"], env=env,
                   capture_output=True, check=True)


def measured(fn, own: cl.Rpcs, idle_s: float):
    """Return ``fn()``'s trial with the RPCs counted around it (after waiting for an empty queue)."""
    if not cl.wait_for_idle_queue(idle_s, say):
        say(f"WARNING: others' jobs still queued ({len(cl.others_jobs())}): their RPCs are in this row")
    before = cl.Rpcs.snapshot()
    t0 = time.time()
    trial = fn()
    trial.commands = cl.commands_between(COMMAND_LOG, t0, time.time())
    trial.rpcs = cl.Rpcs.snapshot().minus(before, own)
    return trial


def run_size(args: argparse.Namespace, n: int, work: Path, own: cl.Rpcs, chosen: list[str],
             deploy_env: dict[str, str] | None) -> list[dict]:
    """Return the metric rows of every chosen way on N cells."""
    s = args.sleep if n < 100 else args.sleep_large
    home, prefect_home = work / "home", work / "prefect-ephemeral"
    matrix, profile = cl.write_inputs(work / "inputs", n, s, args.interval)
    runs = {
        "raw": lambda: ways.raw(ways.render_scripts(matrix, profile, home, f"raw-{n}-{time.time():.0f}"),
                                args.interval),
        "submitit": lambda: ways.submitit(work / f"submitit-{n}", n, s, args.interval, args.partition),
        "cli": lambda: ways.cli(matrix, profile, home, prefect_home, n),
        "deployment": lambda: _deployment(deploy_env, matrix, profile, home, n),
    }
    rows = []
    for way in chosen:
        say(f"N={n} S={s:g}: {way}")
        trial = measured(runs[way], own, args.wait_idle)
        rows.append(metrics(trial, cl.end_times(sorted(trial.detected)), s, args.interval))
        say(f"  makespan {rows[-1]['makespan_s']:.1f} s, wall {rows[-1]['wall_s']:.1f} s, ok {trial.ok}/{n}"
            f" {trial.note}")
    return rows


def _deployment(env, matrix, profile, home, n):
    from orch_deploy import deployment

    return deployment(env, matrix, profile, home, n)


def plan_times(n: int, work: Path, repeats: int = 3) -> dict[str, float]:
    """Return the median wall time of ``scaling-matrix plan`` on an N-cell sleep and NeMo matrix."""
    matrix, profile = cl.write_inputs(work / "inputs", n, 1.0, 2.0)
    nemo = cl.write_nemo_matrix(work / "inputs", n)
    env = ways.cli_env(work / "home", work / "prefect-ephemeral")
    out = {}
    for name, argv in (("sleep", ["--matrix", str(matrix), "--profile", str(profile)]),
                       ("nemo_ibex", ["--matrix", str(nemo), "--profile", "ibex"])):
        walls = []
        for _ in range(repeats):
            t0 = time.time()
            subprocess.run([str(ways.BIN / "scaling-matrix"), "plan", *argv], env=env, check=True,
                           stdout=subprocess.DEVNULL)
            walls.append(time.time() - t0)
        out[f"plan_{name}_{n}_s"] = statistics.median(walls)
        out[f"plan_{name}_{n}_all_s"] = walls
    return out


def use_tree(tree: Path) -> None:
    """Run another checkout of the project (its package first on PYTHONPATH; its prefect.yaml deployed)."""
    import os

    import orch_deploy

    os.environ["PYTHONPATH"] = str(tree.resolve())
    orch_deploy.REPO = tree.resolve()


def all_sizes(args: argparse.Namespace, work: Path, own: cl.Rpcs, chosen: list[str]) -> list[dict]:
    """Return the rows of every size (one server + worker for all sizes when the deployment is measured)."""
    sizes = [int(x) for x in args.sizes.split(",") if x]
    if "deployment" not in chosen:
        return [row for n in sizes for row in run_size(args, n, work, own, chosen, None)]
    from orch_deploy import server_and_worker

    with server_and_worker(work / "deployment", work / "home") as env:
        return [row for n in sizes for row in run_size(args, n, work, own, chosen, env)]


def extras(args: argparse.Namespace, work: Path, chosen: list[str]) -> dict:
    """Return the Prefect floor, the re-attach after SIGKILL and the ``plan`` timings."""
    home, prefect_home, extra = work / "home", work / "prefect-ephemeral", {}
    if "cli" in chosen:
        extra["prefect_bound"] = ways.prefect_bound(home, prefect_home)
        say(f"prefect bound: {extra['prefect_bound']}")
    if args.reattach:
        matrix, profile = cl.write_inputs(work / "inputs", args.reattach, args.reattach_sleep, args.interval)
        extra["reattach"] = ways.reattach(matrix, profile, home, prefect_home, args.reattach, say)
        say(f"reattach: {extra['reattach']}")
    if args.plan:
        extra.update(plan_times(args.plan, work))
        say(f"plan: { {k: v for k, v in extra.items() if k.startswith('plan') and not k.endswith('all_s')} }")
    return extra


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.tree is not None:
        use_tree(args.tree)
    chosen = [w for w in args.ways.split(",") if w]
    work = args.work or Path(subprocess.run(["mktemp", "-d", "/tmp/orch-bench-XXXX"], capture_output=True,
                                            text=True, check=True).stdout.strip())
    (work / "home").mkdir(parents=True, exist_ok=True)
    global COMMAND_LOG
    COMMAND_LOG = cl.log_slurm_commands(work)
    say(f"working in {work} (tree: {args.tree or 'this checkout'})")
    warm_up(work / "home", work / "prefect-ephemeral")
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    rows = with_ratios(all_sizes(args, work, cl.snapshot_cost(), chosen))
    extra = extras(args, work, chosen)
    doc = {"machine": cl.machine(), "started": started, "tree": str(args.tree or "this checkout"),
           "interval_s": args.interval, "rows": rows, **extra}
    args.out.write_text(json.dumps(doc, indent=1, default=str) + "\n")
    print(table(rows))
    print(json.dumps(extra, indent=1))
    return 0 if all(r["ok"] == r["n"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
