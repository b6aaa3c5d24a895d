"""Look at the plots and regression artifacts in the Prefect UI as a person would: a screenshot.

    .venv/bin/python scripts/screenshot_artifacts.py --out /tmp/artifact.png [--api-url URL]

1. Starts ``prefect server`` in a temporary PREFECT_HOME (or uses ``--api-url``).
2. Seeds a SQLite results store under a temporary $SCALING_HOME with ``--nights`` synthetic
   nightly runs of the workshop's LLaMA 3.1 8B data-parallel cells on "ibex"; on the last night
   the container image changes and the 4- and 8-GPU cells get ``--regress`` slower.
3. Runs the ``analyze`` flow on the last run (tables, ``plots-workshop``, ``regressions-workshop``).
4. Opens ``/artifacts/artifact/<id>`` of ``--key`` in headless Debian chromium and saves a PNG.

``--scenario yardstick`` seeds one run of GPU-labelled cells instead (synthetic numbers, labelled
"seeded" in cluster, user and library) shaped like NVIDIA's published DGX Cloud Benchmarking
configurations, opens the ``yardstick-<matrix>`` table (ours, published, ratio, verdict) and also writes
the page's rendered text (``--dump-dom``) next to the PNG.

Prints the artifact URL and the PNG path; exits non-zero when something is missing.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from scaling_matrix.adapters.local import free_port  # noqa: E402
MATRIX = "workshop"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--force-device-scale-factor=1"]


SYNTHETIC = ("synthetic", "none", "synthetic-demo")  # workload, device, cluster of generated data


def seed_history(url: str, nights: int = 10, regress: float = 0.08, seed: int = 7,
                 labels: tuple[str, str, str] = SYNTHETIC) -> str:
    """Return the id of the last of ``nights`` synthetic runs stored at ``url`` (last one regressed).

    ``labels`` (workload, device, cluster) default to 'synthetic' so generated numbers are never
    mistaken for measurements; tests may pass other labels.
    """
    workload, device, cluster = labels
    from scaling_matrix.adapters.store import ResultsStore
    from scaling_matrix.config.loading import load_matrix, load_profile
    from scaling_matrix.matrix import expand
    from scaling_matrix.records import CellMetrics, CellResult, RunInfo

    rng = random.Random(seed)
    store = ResultsStore(url)
    profile = load_profile("ibex").model_copy(  # not validated on purpose: labels outside the enums
        update={"cluster": cluster, "workload": workload, "device": device})
    cells = [pc for pc in expand(load_matrix(MATRIX))
             if pc.model.name == "llama31_8b" and pc.cell.track == "data_parallel"]
    start = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
    run_id = ""
    for night in range(nights):
        last = night == nights - 1
        run_id = f"night-{night + 1:02d}"
        store.create_run(RunInfo(run_id, MATRIX, profile, "alice" if night % 3 else "bob",
                                 "4f2c9e1a7b3d" if not last else "9a8b7c6d5e4f", start + timedelta(days=night)))
        store.set_provenance(run_id, {"container_image": "nemo_25.09.sif" if last else "nemo_25.07.sif",
                                      "nemo_version": "25.09" if last else "25.07", "partition": "batch",
                                      "driver_version": "550.54.15", "cuda_version": "12.4"})
        for pc in cells:
            g = pc.cell.gpus
            slow = 1 + (regress if last and g >= 4 else 0.0)
            step = 1.6 / g ** 0.85 * slow * rng.lognormvariate(0, 0.02)
            peak = 16273.0 * (1 - 0.08 * (g > 1)) + rng.gauss(0, 20)
            m = CellMetrics(steps_logged=250, last_step=249, max_steps=250, reached_last_step=True,
                            first_loss=2.1, final_loss=0.106, step_time_s=step, median_step_time_s=step,
                            mean_step_time_s=step * 1.01, wall_clock_s=120 + 250 * step,
                            peak_mem_mib=peak, avg_mem_mib=peak * 0.8, mode_mem_mib=peak, all_peak_mem_mib=peak + 150)
            # Labelled synthetic everywhere: these are generated numbers, not measurements.
            store.save_cell(CellResult(run_id, pc.cell, pc.model, workload, device, cluster,
                                       status="completed", failure_class="completed", attempts=1, metrics=m))
            store.set_provenance(run_id, {"nodelist": f"gpu{201 + night % 3}-{g:02d}"}, cell_id=pc.cell.key)
    return run_id


#: (cell fields, labels, synthetic tokens/s/GPU) of the yardstick scenario: vs DGXC v25.02 (8x H100,
#: GBS 32, seq 4096): LoRA at 92.6 % (flagged), full SFT at 99.1 %, then two cells with no comparable one.
YARDSTICK_CELLS = [
    ({"peft": "lora", "gpus": 8}, ("nemo", "h100-sxm"), 16500.0),
    ({"peft": "none", "gpus": 8, "job_name": "l-sft-8g"}, ("nemo", "h100-sxm"), 12300.0),
    ({"peft": "lora", "gpus": 1}, ("nemo", "a100"), 2900.0),
    ({"peft": "lora", "gpus": 4}, ("megatron_bridge", "h100-sxm"), 17000.0),
]


def seed_yardstick(url: str, run_id: str = "seeded-yardstick") -> str:
    """Return the id of one stored run of SYNTHETIC GPU-labelled cells for the yardstick view (cluster,
    user and library say 'seeded'; the numbers are made up, shaped like the published configurations)."""
    from scaling_matrix.adapters.store import ResultsStore
    from scaling_matrix.config.loading import load_matrix, load_profile
    from scaling_matrix.config.models import CellSpec
    from scaling_matrix.records import CellMetrics, CellResult, RunInfo

    store = ResultsStore(url)
    model = load_matrix(MATRIX).models["llama31_8b"]
    profile = load_profile("ibex").model_copy(update={"cluster": "seeded-synthetic", "gpu_type": "h100-sxm"})
    store.create_run(RunInfo(run_id, MATRIX, profile, "seeded-test-data", None, datetime(2026, 3, 11, tzinfo=UTC)))
    for fields, (workload, gpu), tokens in YARDSTICK_CELLS:
        cell = CellSpec(model="llama31_8b", track="data_parallel", global_batch_size=32, seq_length=4096,
                        **{"job_name": f"l-{workload[:2]}-{fields['gpus']}g", **fields})
        step = 32 * 4096 / (tokens * cell.gpus)
        m = CellMetrics(steps_logged=50, last_step=49, max_steps=50, reached_last_step=True, final_loss=1.2,
                        step_time_s=step, median_step_time_s=step, steady_median_step_time_s=step,
                        wall_clock_s=60 + 50 * step, peak_mem_mib=60000.0, tokens_per_s_per_gpu=tokens,
                        seq_length=4096, recipe="llama31_8b", library="seeded synthetic data", gpu_type=gpu,
                        precision="bf16")
        store.save_cell(CellResult(run_id, cell, model, workload, "gpu", "seeded-synthetic", status="completed",
                                   failure_class="completed", attempts=1, metrics=m))
    return run_id


def start_server(home: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Return a started ``prefect server`` process and its API URL (healthy)."""
    api = f"http://127.0.0.1:{free_port()}/api"
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_API_URL": api,
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    log = open(home / "server.log", "wb")  # noqa: SIM115 - lives as long as the server
    proc = subprocess.Popen([str(Path(sys.executable).parent / "prefect"), "server", "start", "--host",
                             "127.0.0.1", "--port", api.rsplit(":", 1)[1].split("/")[0]],
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"prefect server exited {proc.returncode}; see {home / 'server.log'}")
        try:
            with urllib.request.urlopen(f"{api}/health", timeout=2):
                return proc, api
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"prefect server not healthy after 180 s; see {home / 'server.log'}")


def run_analyze(api: str, scaling_home: Path, nights: int, regress: float,
                scenario: str = "history") -> dict[str, Any]:
    """Return the ids of the artifacts on the triggered flow run, by key, after seeding the store and
    running ``analyze`` against ``api`` (the run this script triggers, as a user would open it)."""
    os.environ.update(PREFECT_API_URL=api, SCALING_HOME=str(scaling_home),
                      PREFECT_SERVER_ANALYTICS_ENABLED="false")
    os.environ.pop("SCALING_DB_URL", None)
    os.environ.pop("SCALING_DB_BLOCK", None)
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    from flows.analyze import analyze
    from scaling_matrix.paths import results_url

    run_id = seed_yardstick(results_url()) if scenario == "yardstick" else seed_history(results_url(), nights, regress)
    state = analyze(run_id, MATRIX, return_state=True)
    result = state.result()
    flow_run_id = state.state_details.flow_run_id
    with get_client(sync_client=True) as client:
        arts = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
    ids = {a.key: str(a.id) for a in arts if a.key in result.artifacts}
    return {"run_id": run_id, "alerts": len(result.alerts), "ids": ids, "flow_run_id": str(flow_run_id),
            "plots": [str(p) for p in result.plots]}


def screenshot(url: str, out: Path, chromium: str, budget_ms: int, size: str, dump_dom: bool = False) -> None:
    """Save a headless-chromium screenshot of ``url`` to ``out`` (and, with ``dump_dom``, the rendered
    page's HTML to ``out`` with suffix ``.html``)."""
    for mode in ("screenshot", "dump-dom") if dump_dom else ("screenshot",):
        with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
            flag = f"--screenshot={out}" if mode == "screenshot" else "--dump-dom"
            argv = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={size}",
                    f"--virtual-time-budget={budget_ms}", flag, url]
            res = subprocess.run(argv, capture_output=True, text=True, timeout=180)
        if res.returncode != 0 or (mode == "screenshot" and not out.is_file()):
            raise RuntimeError(f"chromium exited {res.returncode}: {res.stderr[-2000:]}")
        if mode == "dump-dom":
            out.with_suffix(".html").write_text(res.stdout, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    """Run the whole check; return the exit status."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("artifact.png"))
    ap.add_argument("--api-url", help="use this running server instead of starting one")
    ap.add_argument("--workdir", type=Path, help="where the store and PREFECT_HOME go (default: temporary)")
    ap.add_argument("--key", help=f"artifact key to open (default plots-{MATRIX}, or yardstick-{MATRIX})")
    ap.add_argument("--scenario", choices=["history", "yardstick"], default="history")
    ap.add_argument("--nights", type=int, default=10)
    ap.add_argument("--regress", type=float, default=0.08)
    ap.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    ap.add_argument("--budget-ms", type=int, default=15000)
    ap.add_argument("--window-size", help="default 1400,1800 (yardstick: 2000,1000, so every column shows)")
    args = ap.parse_args(argv)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="screenshot-artifacts-"))
    (work / "prefect-home").mkdir(parents=True, exist_ok=True)
    proc, api = (None, args.api_url) if args.api_url else start_server(work / "prefect-home")
    try:
        found = run_analyze(api, work / "scaling-home", args.nights, args.regress, args.scenario)
        key = args.key or f"{'yardstick' if args.scenario == 'yardstick' else 'plots'}-{MATRIX}"
        if key not in found["ids"]:
            print(f"artifact {key!r} not published; got {sorted(found['ids'])}", file=sys.stderr)
            return 1
        url = f"{api.removesuffix('/api')}/artifacts/artifact/{found['ids'][key]}"
        size = args.window_size or ("2000,1000" if args.scenario == "yardstick" else "1400,1800")
        screenshot(url, args.out.resolve(), args.chromium, args.budget_ms, size, dump_dom=args.scenario == "yardstick")
        print(f"run {found['run_id']}: {found['alerts']} alert(s); plots {found['plots']}")
        print(f"artifact {key}: {url} (on flow run {found['flow_run_id']})")
        print(f"screenshot: {args.out.resolve()} ({args.out.stat().st_size} bytes)")
        return 0
    finally:
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)


if __name__ == "__main__":
    raise SystemExit(main())
