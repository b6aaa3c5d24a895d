"""Cost of the contract tier from cold: venv builds (time, size, downloads) and the tier's run time.

Builds both contract venvs into a fresh ``$SCALING_CONTRACT_HOME`` with a fresh ``$PIP_CACHE_DIR``
(cold pip cache), and, as the baseline measured in the same run, the project's own venv the way
``make install`` builds it (same cold cache). Then runs ``pytest tests/contract`` against the fresh
venvs. With ``--downloads`` it also fetches each lock's wheels with ``pip download`` and splits
them into PyPI downloads and files this machine's local package mirror serves.

    .venv/bin/python benchmarks/contract_bench.py [--downloads] [--keep]

Needs ~15 GB free disk for the run; everything goes to a temp dir removed at the end (unless --keep).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LOCAL_MIRRORS = ("/opt/pypi/files", "/opt/pypi-more/files", "/opt/wheels")


def timed(cmd: list[str], env: dict[str, str], cwd: Path = REPO) -> float:
    """Run ``cmd`` (must succeed); return its wall time in seconds."""
    t0 = time.monotonic()
    subprocess.run(cmd, env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - t0


def size_gib(path: Path) -> float:
    """Return the disk usage of ``path`` in GiB (``du``)."""
    out = subprocess.run(["du", "-sk", str(path)], capture_output=True, text=True, check=True).stdout
    return int(out.split()[0]) / 2**20


def project_venv(tmp: Path, env: dict[str, str]) -> tuple[float, float]:
    """Baseline: the project's venv as ``make install`` builds it; return (seconds, GiB)."""
    venv = tmp / "project-venv"
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-qq"]
    t = timed(["python3", "-m", "venv", str(venv)], env)
    t += timed([*pip, "--upgrade", "pip"], env)
    t += timed([*pip, "torch==2.13.0"], env)
    t += timed([*pip, "-e", ".[test,postgres]"], env)
    return t, size_gib(venv)


def downloads(name: str, tmp: Path, env: dict[str, str]) -> str:
    """Return what ``pip download`` of lock ``name`` fetches: PyPI vs the local mirror, sizes, time."""
    dest = tmp / f"dl-{name}"
    t = timed([sys.executable, "-m", "pip", "download", "-qq", "--no-deps", "-d", str(dest), "-r",
               str(REPO / "contract" / f"requirements-{name}.txt")], env)
    local = {f for d in LOCAL_MIRRORS if os.path.isdir(d) for f in os.listdir(d)}
    files = [(f.name in local, f.stat().st_size, f.name) for f in dest.iterdir()]
    pypi = sorted(((s, n) for loc, s, n in files if not loc), reverse=True)
    mirror = sum(s for loc, s, _ in files if loc)
    shutil.rmtree(dest)
    return (f"{name}: pip download {t:.0f} s; PyPI {len(pypi)} files {sum(s for s, _ in pypi) / 2**20:.0f} MiB, "
            f"local mirror {len(files) - len(pypi)} files {mirror / 2**20:.0f} MiB; largest from PyPI: "
            + ", ".join(f"{n.split('-')[0]} {s / 2**20:.0f} MiB" for s, n in pypi[:5]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--downloads", action="store_true", help="also measure pip download per lock")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="contract-bench-"))
    env = {**os.environ, "PIP_CACHE_DIR": str(tmp / "pip-cache"), "SCALING_CONTRACT_HOME": str(tmp / "contract")}
    try:
        base_s, base_gib = project_venv(tmp, {**env, "PIP_CACHE_DIR": str(tmp / "pip-cache-project")})
        print(f"baseline: project venv (make install steps), cold pip cache: {base_s:.0f} s, {base_gib:.2f} GiB")
        total = 0.0
        for name in ("automodel", "nemo2"):
            secs = timed([str(REPO / "scripts" / "contract-venvs.sh"), "build", name], env)
            total += secs
            path = subprocess.run([str(REPO / "scripts" / "contract-venvs.sh"), "path", name], env=env,
                                  capture_output=True, text=True, check=True).stdout.strip()
            print(f"contract venv {name}: {secs:.0f} s ({secs / base_s:.2f}x baseline), {size_gib(Path(path)):.2f} GiB")
        reuse = timed([str(REPO / "scripts" / "contract-venvs.sh"), "build"], env)
        print(f"both venvs cold: {total:.0f} s ({total / base_s:.2f}x baseline); reuse when locks unchanged: {reuse:.1f} s")
        run = timed([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/contract"],
                    {**env, "CI": "true"})
        print(f"contract tier run (pytest tests/contract, CI=true): {run:.0f} s ({run / base_s:.2f}x baseline)")
        if args.downloads:
            for name in ("automodel", "nemo2"):
                print(downloads(name, tmp, {**env, "PIP_CACHE_DIR": str(tmp / f"pip-cache-dl-{name}")}))
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
