"""Parse ~1 GB of generated NeMo 2 job logs and compare with ``grep -c 'train_step_timing'`` on the same files.

Usage::

    .venv/bin/python benchmarks/parse_bench.py [--size-mb 1024] [--jobs N] [--dir DIR] [--keep] [--repeat 5]
        [--skip-python]

The logs imitate real workshop jobs (facts: shared/reference/nemo.md §8-9, workshop.md §5):
``srun -l`` / NeMo-Run rank prefixes, start-up noise (``[NeMo I ...]`` lines, LoRA ``Adding lora
to:`` lines, rank warnings), one progress line per step, validation bursts, checkpoint lines,
NCCL warnings, a harmless warning traceback at exit, the job footer; a few jobs restart
(duplicated steps) or end in a CUDA OOM traceback. The logs are synced to disk and read once (page
cache warm), then ``--repeat`` rounds each time grep and then "ours", the bulk path
(:func:`~scaling_matrix.parsing.bulk.parse_files_bulk`: batches of files read, scanned by a numba
kernel and summarised in ``--jobs`` threads; after a warm-up that compiles or loads the cached
kernel); best times and per-round ratios are printed. Last comes the per-line Python parser
(``parse_file`` streams every file in chunks, spread over ``--jobs`` processes; ``--skip-python``
leaves it out).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from multiprocessing import Pool
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scaling_matrix.parsing.bulk import available, parse_files_bulk  # noqa: E402
from scaling_matrix.parsing.progress import parse_file  # noqa: E402

PREFIXES = ["0: ", "exp/0 [default0]:", "p/0 [default0]:"]
NOISE = [
    "{r}: [NeMo W 2026-02-10 10:00:{s:02d} nemo_logging:349] /opt/NeMo/nemo/lightning/pytorch/strategies/"
    "megatron_strategy.py:325: UserWarning: Consider setting the `CUDA_DEVICE_MAX_CONNECTIONS` env var",
    "{r}: [rank{r}]:[W210 10:00:{s:02d}.123456 ProcessGroupNCCL.cpp:4561] [PG ID 0 PG GUID 0 Rank {r}] "
    "using GPU {r} to perform barrier as devices used by this process are currently unknown.",
    "{r}: NCCL INFO Channel 00/0{r} : 0[0] -> 1[1] via P2P/CUMEM/read",
    "{r}: [NeMo I 2026-02-10 10:00:{s:02d} num_microbatches_calculator:228] setting number of microbatches "
    "to constant 1",
]
TRACEBACK = [
    "0: [rank0]:W0210 10:09:50.000000 torch/_dynamo/convert_frame.py:906] torch._dynamo hit config.cache_size_limit",
    "0: Traceback (most recent call last):",
    '0:   File "/usr/lib/python3/dist-packages/torch/_dynamo/convert_frame.py", line 1064, in __call__',
    "0:     result = self._inner_convert(frame, cache_entry, hooks, frame_state)",
    "0: torch._dynamo.exc.Unsupported: call_function BuiltinVariable(print) [ConstantVariable()] {}",
]
OOM = [
    "0: [rank0]: Traceback (most recent call last):",
    '0: [rank0]:   File "/opt/NeMo/nemo/collections/llm/api.py", line 123, in finetune',
    "0: [rank0]: torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total "
    "capacity of 79.15 GiB of which 1.06 GiB is free.",
]


def progress_line(rng: random.Random, prefix: str, step: int, max_steps: int, epoch_len: int,
                  resumed: bool, val: float | None) -> str:
    """Return one NeMo 2 progress line (key order as in a fresh run, or as after a resume)."""
    t = 7.3 + rng.random() if step == 0 else 1.6 + rng.gauss(0, 0.02)
    pairs = [("lr", f"{1e-4 * (step + 1) / max_steps:.4}"), ("global_batch_size", "8"), ("global_step", str(step)),
             ("reduced_train_loss", f"{2.0 / (1 + step / 50) + rng.random() / 10:.4}"),
             ("train_step_timing in s", f"{t:.4}")]
    if step:
        pairs.insert(1 if resumed else len(pairs), ("consumed_samples", str(8 * (step + 1))))
    if val is not None:
        pairs.append(("val_loss", f"{val:.4}"))
    body = " | ".join(f"{k}: {v}" for k, v in pairs)
    return f"{prefix}Training epoch {step // epoch_len}, iteration {step % epoch_len}/{max_steps - 1} | {body}"


def job_log(rng: random.Random) -> tuple[str, int]:
    """Return one job's log text and its number of progress lines."""
    steps, prefix = rng.randint(200, 1200), rng.choice(PREFIXES)
    epoch_len, ranks = rng.choice([100, 250, 10_000]), rng.choice([1, 2, 4, 8])
    out = ["===============================", " Job started", " Start time : 2026-02-10 10:00:00",
           "==============================="]
    out += [f"{r}: Initializing distributed: GLOBAL_RANK: {r}, MEMBER: {r + 1}/{ranks}" for r in range(ranks)]
    out += [f"0: Adding lora to: module.decoder.layers.{i // 4}.self_attention.linear_{m}"
            for i, m in enumerate(["qkv", "proj", "fc1", "fc2"] * 32)]
    out += [NOISE[i % len(NOISE)].format(r=i % ranks, s=i % 60) for i in range(40 * ranks)]
    out += [f"{prefix}Sanity checking Validation: iteration {k}/2" for k in (1, 2)]
    restart = steps // 2 if rng.random() < 0.03 else None
    oom = rng.random() < 0.02
    n_progress, val, step, resumed = 0, None, 0, False
    while step < steps:
        out.append(progress_line(rng, prefix, step, steps, epoch_len, resumed, val))
        n_progress += 1
        if step % 50 == 49:
            out += [f"{prefix}Validation: iteration {k}/10" for k in range(1, 11)]
            val = 2.0 / (1 + step / 50)
            out.append(f"0: Epoch 0, global step {step}: 'val_loss' reached {val:.5f}, saving model to '/ckpt'")
        if rng.random() < 0.02:
            out.append(NOISE[2].format(r=rng.randrange(ranks), s=step % 60))
        if oom and step == steps // 3:
            out += OOM
            break
        if restart is not None and step == restart:
            out.append("[NeMo W 2026-02-10 10:05:00 nemo_logging:349] Worker group FAILED. 3/3 attempts left; "
                       "will restart worker group")
            step, restart, resumed = step - 10, None, True
        step += 1
    if not oom:
        out.append(f"INFO:pytorch_lightning.utilities.rank_zero:`Trainer.fit` stopped: `max_steps={steps}` reached.")
    out += TRACEBACK + ["===============================", " Job finished", " End time   : 2026-02-10 10:09:55",
                        " Total time : 00:09:55", "==============================="]
    return "\n".join(out) + "\n", n_progress


def generate(directory: Path, size_mb: int, seed: int) -> tuple[list[Path], int]:
    """Write job logs into ``directory`` until ``size_mb`` MiB; return the files and progress-line count."""
    rng, files, total, lines = random.Random(seed), [], 0, 0
    while total < size_mb * 1024 * 1024:
        text, n = job_log(rng)
        path = directory / f"job-{len(files):06d}.log"
        path.write_text(text)
        files.append(path)
        total, lines = total + len(text), lines + n
    return files, lines


def grep_once(directory: Path) -> tuple[float, int]:
    """Return one ``grep -rc train_step_timing`` run's seconds over ``directory`` and the matching lines."""
    start = time.perf_counter()
    out = subprocess.run(["grep", "-rc", "train_step_timing", str(directory)], capture_output=True,
                         text=True, check=False).stdout
    return time.perf_counter() - start, sum(int(line.rsplit(":", 1)[1]) for line in out.splitlines())


def _parse_one(path: Path) -> tuple[int, int]:
    parsed = parse_file(path)
    return len(parsed.steps), parsed.failure is not None


def time_rounds(directory: Path, files: list[Path], jobs: int, repeat: int) -> dict[str, Any]:
    """Return grep's and the bulk path's seconds per round (``repeat`` rounds, grep then ours in each, so
    both see the same machine), grep's line count, our unique steps and failed jobs, and the warm-up
    seconds (JIT compile or cache load) spent before the first round."""
    start = time.perf_counter()
    parse_files_bulk(files[:1], threads=jobs)
    out: dict[str, Any] = {"warm": time.perf_counter() - start, "grep": [], "ours": []}
    for _ in range(repeat):
        seconds, out["lines"] = grep_once(directory)
        out["grep"].append(seconds)
        start = time.perf_counter()
        summaries = list(parse_files_bulk(files, threads=jobs).values())
        out["ours"].append(time.perf_counter() - start)
    out["steps"] = sum(s["iterations"] for s in summaries)
    out["failed"] = sum(s["failure"] is not None for s in summaries)
    return out


def time_parser(files: list[Path], jobs: int) -> tuple[float, int, int]:
    """Return the parser's seconds over ``files``, the unique steps and the failed jobs found."""
    start = time.perf_counter()
    if jobs > 1:
        with Pool(jobs) as pool:
            results = pool.map(_parse_one, files, chunksize=16)
    else:
        results = [_parse_one(p) for p in files]
    return time.perf_counter() - start, sum(r[0] for r in results), sum(r[1] for r in results)


def main(argv: list[str] | None = None) -> None:
    """Generate the logs, time grep and the parser, print both and the ratio."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=int, default=1024)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--dir", type=Path, default=None, help="where to write the logs (default: a temp dir)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", action="store_true", help="keep the generated logs")
    ap.add_argument("--repeat", type=int, default=5, help="rounds of grep then ours")
    ap.add_argument("--skip-python", action="store_true", help="leave out the per-line Python parser (slow)")
    args = ap.parse_args(argv)
    directory = args.dir or Path(tempfile.mkdtemp(prefix="parse-bench-"))
    directory.mkdir(parents=True, exist_ok=True)
    try:
        t0 = time.perf_counter()
        files, progress = generate(directory, args.size_mb, args.seed)
        size = sum(p.stat().st_size for p in files)
        print(f"generated {len(files)} logs, {size / 2**20:.0f} MiB, {progress} progress lines "
              f"in {time.perf_counter() - t0:.1f} s ({directory})")
        os.sync()  # no writeback of the fresh logs during the timings
        for p in files:  # warm the page cache for both contenders
            p.read_bytes()
        r = time_rounds(directory, files, args.jobs, args.repeat)
        grep_s, ours_s, steps, failed = min(r["grep"]), min(r["ours"]), r["steps"], r["failed"]
        print(f"grep -c train_step_timing: {grep_s:.3f} s best of {args.repeat} ({r['lines']} lines)")
        kernel = "numba kernel" if available() else "NO numba: Python fallback"
        print(f"ours: parse_files_bulk x {len(files)} ({kernel}, threads={args.jobs}): {ours_s:.3f} s best of "
              f"{args.repeat} ({steps} unique steps, {failed} failed jobs, {size / 2**20 / ours_s:.1f} MiB/s; "
              f"warm-up {r['warm']:.2f} s)")
        rounds = sorted(o / g for g, o in zip(r["grep"], r["ours"], strict=True))
        print(f"ratio ours/grep: {ours_s / grep_s:.2f}x best/best; per round {', '.join(f'{x:.2f}' for x in rounds)}"
              f" (median {rounds[len(rounds) // 2]:.2f}x; target <= 3x)")
        if not args.skip_python:
            py_s, py_steps, py_failed = time_parser(files, args.jobs)
            agree = "agree" if (py_steps, py_failed) == (steps, failed) else "DISAGREE"
            print(f"python per-line parser: parse_file x {len(files)} (jobs={args.jobs}): {py_s:.3f} s "
                  f"({py_steps} unique steps, {py_failed} failed jobs, {size / 2**20 / py_s:.1f} MiB/s; "
                  f"totals {agree} with ours)")
            print(f"ratio python/grep: {py_s / grep_s:.1f}x; python/ours: {py_s / ours_s:.1f}x")
    finally:
        if not args.keep and args.dir is None:
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
