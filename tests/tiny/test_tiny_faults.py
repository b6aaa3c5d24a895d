"""Fault injection in the tiny engine (test tooling, ``SCALING_TINY_FAULT``): each fault happens in a real
engine process, in the real failure's words, and the project's classifier (``parse_text`` + ``classify_local``,
what ``cells.judge`` runs for a local attempt) names it as the taxonomy says."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from scaling_matrix.imports import checkpoint_complete
from scaling_matrix.outcome import classify_local
from scaling_matrix.parsing.progress import parse_text
from scaling_matrix.tiny.faults import ENV, Fault, parse_fault

from .helpers import ENGINE, Finished, finetune_args, launch_ranks, progress_lines, run_engine

STEPS = 4


def test_grammar_reads_every_kind_and_option() -> None:
    assert parse_fault("oom@3") == Fault("oom", 3)
    assert parse_fault("hang@2,seconds=1.5,once") == Fault("hang", 2, 1.5, None, True)
    assert parse_fault("nccl_timeout@1,rank=1") == Fault("nccl_timeout", 1, rank=1)
    assert parse_fault("sigkill@import") == Fault("sigkill", None)
    assert parse_fault("config_error") == Fault("config_error", 0)


@pytest.mark.parametrize(("text", "words"), [("gpu_melt@2", "unknown fault 'gpu_melt'"),
                                             ("oom@import", "cannot fire during the import"),
                                             ("hang@-1", "step must be 0 or more"),
                                             ("hang@1,forever", "unknown option 'forever'")])
def test_grammar_refuses_what_it_cannot_do(text: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        parse_fault(text)


def _judged(ranks: list[Finished]) -> tuple[str, str, int]:
    """Return (failure class, evidence, progress lines) of a run, judged as a local attempt is."""
    text = "\n".join(r.stdout + "\n" + r.stderr for r in ranks)
    parsed = parse_text(text, expected_max_steps=STEPS)
    code = next((r.returncode for r in ranks if r.returncode != 0), 0)
    outcome = classify_local(code, text, parsed.reached_last_step, parsed=parsed)
    return outcome.failure_class.value, outcome.reason, len(progress_lines(ranks[0].stdout))


def _run(imported: Path, log_dir: Path, env: dict[str, str], fault: str, ranks: int = 1) -> list[Finished]:
    args = finetune_args(imported, log_dir, f"trainer.devices={ranks}", f"trainer.max_steps={STEPS}",
                         "data.global_batch_size=4", "trainer.val_check_interval=2", "trainer.limit_val_batches=1")
    env = {**env, ENV: fault}
    return launch_ranks(args, ranks, env) if ranks > 1 else [run_engine(args, env=env)]


@pytest.mark.parametrize(("fault", "ranks", "klass", "code", "evidence"), [
    ("oom@2", 2, "oom", 1, "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate"),
    ("nccl_timeout@2,rank=1", 2, "nccl_timeout", -6, "Watchdog caught collective operation timeout"),
    ("segv@2", 1, "crash", -11, "Fatal Python error: Segmentation fault"),
    ("sigkill@2", 1, "unknown", -9, "killed by signal 9"),
    ("config_error", 1, "config_error", 1, "Unexpected error: You set `--ntasks=2`"),
])
def test_each_fault_is_classified_as_the_real_one(fault: str, ranks: int, klass: str, code: int, evidence: str,
                                                  imported: Path, tiny_root: Path, tiny_env: dict[str, str]) -> None:
    done = _run(imported, tiny_root / f"fault-{fault}", tiny_env, fault, ranks)
    got, reason, progress = _judged(done)
    assert (got, any(r.returncode == code for r in done)) == (klass, True), (reason, [r.returncode for r in done],
                                                                           done[0].stderr[-2000:])
    assert evidence in reason
    assert progress == (0 if fault == "config_error" else 2)  # steps 0 and 1 ran; the fault fired before step 2


def test_noise_run_completes_although_its_noise_looks_fatal(imported: Path, tiny_root: Path,
                                                            tiny_env: dict[str, str]) -> None:
    args = finetune_args(imported, tiny_root / "fault-noise", f"trainer.max_steps={STEPS}", "data.global_batch_size=4")
    # one stream, interleaved as in a SLURM job's output file
    proc = subprocess.run(ENGINE + args, env={**tiny_env, ENV: "noise@2"}, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=180)
    text = proc.stdout
    assert proc.returncode == 0, text[-2000:]
    assert _judged([Finished(args, 0, text, "", 0.0)])[0] == "completed"
    assert text.count("ConnectionRefusedError: [Errno 111] Connection refused") == 2  # logged, and inside a warning
    assert "UserWarning: Scoring failed" in text and "destroy_process_group() was not called" in text
    # negative control: cut right after the noise (as if the run died there), the same lines are a crash
    cut = text[: text.index("  warnings.warn(")]
    parsed = parse_text(cut, expected_max_steps=STEPS)
    assert classify_local(1, cut, parsed.reached_last_step, parsed=parsed).failure_class.value == "crash"


def test_once_fires_on_the_first_attempt_only(imported: Path, tiny_root: Path, tiny_env: dict[str, str]) -> None:
    log_dir = tiny_root / "fault-once"
    first = _run(imported, log_dir, tiny_env, "nccl_timeout@1,once")
    second = _run(imported, log_dir, tiny_env, "nccl_timeout@1,once")
    assert (_judged(first)[0], _judged(second)[0]) == ("nccl_timeout", "completed")


def _wait_for(check: object, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not check() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.2)


def test_hang_stops_progress_and_a_bounded_hang_goes_on(imported: Path, tiny_root: Path,
                                                        tiny_env: dict[str, str]) -> None:
    args = finetune_args(imported, tiny_root / "fault-hang", "trainer.max_steps=4", "data.global_batch_size=4")
    out = tiny_root / "fault-hang.out"
    with open(out, "w") as sink:
        proc = subprocess.Popen(ENGINE + args, env={**tiny_env, ENV: "hang@1"}, stdout=sink, stderr=sink)
    try:
        _wait_for(lambda: progress_lines(out.read_text()) or proc.poll() is not None)
        time.sleep(3)
        assert proc.poll() is None  # still there, making no progress
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert len(progress_lines(out.read_text())) == 1  # step 0 only
    start = time.monotonic()
    bounded = _run(imported, tiny_root / "fault-hang-3s", tiny_env, "hang@1,seconds=3")
    assert bounded[0].returncode == 0 and _judged(bounded)[0] == "completed"
    assert time.monotonic() - start >= 3


@pytest.mark.parametrize("fault", ["sigkill@import", "hang@import"])
def test_an_interrupted_import_is_never_complete(fault: str, tiny_root: Path, tiny_env: dict[str, str]) -> None:
    target = tiny_root / f"import-{fault}"
    args = ["llm", "import", "model=tiny_llama", "source=tiny://seed/7", f"output_path={target}",
            "overwrite=True", "--yes"]
    proc = subprocess.Popen(ENGINE + args, env={**tiny_env, ENV: fault}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    _wait_for(lambda: proc.poll() is not None or (target / "weights" / "model.safetensors").is_file())
    time.sleep(1)
    proc.kill()  # a hang is killed from outside, as a lost orchestrator's job would be
    proc.communicate(timeout=30)
    assert (target / "weights").is_dir() and not (target / "context" / "io.json").exists()
    assert not checkpoint_complete(target)
