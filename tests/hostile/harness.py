"""Hostile-input corpus harness: a sandbox with a canary and a victim folder, cases, one invariant check.

A case is a CLI invocation (the real typer app, in-process or as the installed console script) over
files it writes: a matrix, a profile, raw bytes. Every case must end with exit 2 and one
``error: <key path>: <problem> (fix: ...)`` line per problem (reject), or exit 0 with user values
printed verbatim and quoted once (accept). Always: no traceback, the canary file never appears, the
victim folder survives byte for byte, no secret value and no raw control character in the output.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field as dc_field
from pathlib import Path
from typing import Any

import yaml

#: Fake credentials in their issuers' formats (AKIAIOSFODNN7EXAMPLE is AWS's documented example key).
SECRETS = {
    "hf": "hf_" + "Zq8vLx2Rt5Wp9Ks3Nd7Hj4Fb6Mc1Ga0Ye2Uo",
    "ghp": "ghp_" + "R8kT2mQ9vX4wL7nB3pZ6yH1cJ5dF0gS8aE2u",
    "ghpat": "github_pat_" + "11AB2CD3E0" + "x" * 12 + "_Yy7Zz8Ww9Vv0Uu1Tt2Ss3Rr4",
    "aws": "AKIAIOSFODNN7EXAMPLE",
    "sk": "sk-proj-" + "Qw3Er5Ty7Ui9Op1As3Df5Gh7Jk",
    "slack": "xoxb-" + "2048-4096-Ab3Cd5Ef7Gh9",
    "url_pw": "Pa55w0rd-in-url-xyz",
    "pem": "-----BEGIN RSA PRIVATE KEY-----",
}
NEMO_MODEL = {"factory": "llama31_8b", "family": "dense", "source": "hf://meta-llama/Llama-3.1-8B",
              "workload": "nemo"}
MOE_MODEL = {"factory": "mixtral_8x7b", "family": "moe", "experts": 8, "source": "hf://mistralai/Mixtral-8x7B-v0.1",
             "workload": "nemo"}
PLAN = ("plan", "--matrix", "{matrix}", "--profile", "{profile}")
RUN = ("run", "--matrix", "{matrix}", "--profile", "{profile}")
BIDI = ("\u202e", "\u2066", "\u200f")


def nemo_matrix(cell: dict[str, Any] | None = None, **top: Any) -> dict[str, Any]:
    """Return a valid one-cell NeMo matrix (Llama DP LoRA on 2 GPUs), ``cell``/``top`` merged in."""
    row = {"model": "llama31_8b", "track": "data_parallel", "gpus": 2, **(cell or {})}
    return {"name": "hostile", "models": {"llama31_8b": dict(NEMO_MODEL)}, "cells": [row], **top}


def tiny_matrix(cell: dict[str, Any] | None = None, **top: Any) -> dict[str, Any]:
    """Return a valid one-cell tiny-engine matrix (1 rank, 2 steps), ``cell``/``top`` merged in."""
    model = {"factory": "tiny_llama", "family": "dense", "source": "tiny://seed/1", "workload": "tiny"}
    row = {"model": "tiny_llama", "track": "data_parallel", "gpus": 1, "max_steps": 2, "global_batch_size": 2,
           "warmup_steps": 0, "limit_val_batches": 0, **(cell or {})}
    return {"name": "hostile-tiny", "models": {"tiny_llama": model}, "cells": [row], **top}


def gpu_profile(slurm: dict[str, Any] | None = None, container: dict[str, Any] | None = None,
                **top: Any) -> dict[str, Any]:
    """Return a valid SLURM GPU profile for NeMo (plan renders it without any GPU)."""
    prof = {"name": "hostile-gpu", "launcher": "slurm", "workload": "nemo", "device": "gpu", "capacity_gpus": 16,
            "gpu_memory_gib": 80, "slurm": {"partition": "gpu", **(slurm or {})}, **top}
    if container is not None:
        prof["container"] = container
    return prof


def local_profile(**top: Any) -> dict[str, Any]:
    """Return a valid local tiny-engine profile."""
    return {"name": "hostile-local", "launcher": "local", "workload": "tiny", "device": "cpu", "capacity_gpus": 1,
            **top}


@dataclass(frozen=True)
class Case:
    """One CLI invocation and what must come of it."""

    name: str
    klass: str
    argv: tuple[str, ...] = PLAN
    matrix: Any = None  # dict (YAML-dumped), str (text), bytes (raw), None (nemo_matrix())
    profile: Any = None  # same; None: gpu_profile()
    expect: str = "reject"
    field: str = ""  # must appear in an error line
    fix: str = ""  # must appear in the output
    payload: str = ""  # the bad value: never echoed
    shows: tuple[str, ...] = ()  # accept: printed verbatim
    shell_word: str = ""  # accept: one printed command, run by bash, yields exactly this argv word
    lines: int = 0  # reject: exact number of problem lines (0: at least one)
    setup: str = ""  # extra sandbox preparation (see Sandbox.prepare)
    code: int = 2  # reject: the exit status (report's "no such run" is 1)
    absent: tuple[str, ...] = ()  # must not appear in the output (e.g. EP wording for dense models)
    env: dict[str, str] = dc_field(default_factory=dict)


@dataclass
class Result:
    """What one invocation printed and returned."""

    exit_code: int
    stdout: str
    stderr: str
    crashed: str = ""  # an exception other than SystemExit escaped the CLI


class Sandbox:
    """A temp folder with a canary path (must never be created) and a victim folder (must survive)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.home = root / "scaling-home"
        self.canary = root / "CANARY"
        self.victim = root / "victim"
        self.victim.mkdir(parents=True)
        (self.victim / "thesis.tex").write_text("years of work\n")
        (self.victim / "data").mkdir()
        (self.victim / "data" / "results.csv").write_text("a,b\n1,2\n")
        self.victim_file = root / "victim.txt"
        self.victim_file.write_text("do not overwrite\n")
        self._digest = self.digest()

    def digest(self) -> str:
        """Return a hash over every path and content under the victim folder and the victim file."""
        h = hashlib.sha256(self.victim_file.read_bytes() if self.victim_file.is_file() else b"<gone>")
        for path in sorted(self.victim.rglob("*")) if self.victim.is_dir() else []:
            h.update(str(path.relative_to(self.root)).encode())
            h.update(path.read_bytes() if path.is_file() else b"<dir>")
        return h.hexdigest() + ("" if self.victim.is_dir() else "<victim gone>")

    def intact(self) -> bool:
        """Return True when the victim folder and file are exactly as created."""
        return self.digest() == self._digest

    def fill(self, value: Any) -> Any:
        """Return ``value`` with {tmp}, {canary}, {victim}, {victim_file} and secret placeholders filled."""
        if isinstance(value, str):
            places = {"tmp": self.root, "canary": self.canary, "victim": self.victim,
                      "victim_file": self.victim_file, **SECRETS}
            for key, text in places.items():
                value = value.replace("{" + key + "}", str(text))
            return value
        if isinstance(value, dict):
            return {self.fill(k): self.fill(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self.fill(v) for v in value)
        return value

    def prepare(self, setup: str) -> None:
        """Apply a case's extra preparation: a stored run to resume, a link to the victim, ..."""
        if setup == "seed_run":
            from datetime import UTC, datetime

            from scaling_matrix.adapters.store import ResultsStore
            from scaling_matrix.config.loading import load_profile
            from scaling_matrix.records import RunInfo

            url = f"sqlite:///{self.home / 'results.db'}"
            ResultsStore(url).create_run(RunInfo("20250101-020000-abc123", "smoke", load_profile("local"), "ci",
                                                 None, datetime.now(UTC)))
        elif setup == "link_to_victim":
            (self.root / "link").symlink_to(self.victim, target_is_directory=True)
        elif setup == "matrix_dir":
            (self.root / "adir.yaml").mkdir()

    def write(self, name: str, content: Any) -> str:
        """Write a case file and return its path."""
        path = self.root / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif isinstance(content, str):
            path.write_text(self.fill(content), encoding="utf-8")
        else:
            path.write_text(yaml.safe_dump(self.fill(content), sort_keys=False, allow_unicode=True), encoding="utf-8")
        return str(path)

    def argv(self, case: Case) -> list[str]:
        """Return the case's argv with its files written, its setup done and placeholders filled."""
        self.prepare(case.setup)
        files = {"{matrix}": self.write("m.yaml", nemo_matrix() if case.matrix is None else case.matrix),
                 "{profile}": self.write("p.yaml", gpu_profile() if case.profile is None else case.profile)}
        return [files[a] if a in files else self.fill(a) for a in case.argv]

    def env(self, case: Case) -> dict[str, str]:
        """Return the environment of one invocation: its own $SCALING_HOME, no shared database."""
        return {"SCALING_HOME": str(self.home), **{k: self.fill(v) for k, v in case.env.items()}}


def bash_words(line: str, cwd: Path) -> list[str]:
    """Return the argv a real bash builds from the printed command ``line``."""
    done = subprocess.run(["bash", "-c", "printf '%s\\0' " + line], cwd=cwd, capture_output=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout.decode().split("\0")[:-1]


def check(case: Case, box: Sandbox, res: Result) -> None:
    """Assert the corpus invariants for one case and its expectation."""
    out = res.stdout + res.stderr
    assert not res.crashed, f"crashed: {res.crashed}"
    assert "Traceback" not in out, out[-2000:]
    assert not box.canary.exists(), "the canary was created: something ran a user-supplied command"
    assert box.intact(), "the victim folder or file was changed"
    assert not [k for k, v in SECRETS.items() if v in out], "a secret value was printed"
    assert "\x1b" not in out and not any(c in out for c in BIDI), "raw escape/bidi characters printed"
    if case.payload:
        assert box.fill(case.payload) not in out, "the bad value was echoed"
    assert not [a for a in case.absent if a in out], f"printed one of {case.absent}"
    (_check_reject if case.expect == "reject" else _check_accept)(case, box, res)


def _check_reject(case: Case, box: Sandbox, res: Result) -> None:
    out = res.stdout + res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.exit_code == case.code, f"exit {res.exit_code}: {out[-1500:]}"
    assert lines and all(ln.startswith("error: ") and "(fix: " in ln for ln in lines), out[-1500:]
    assert any(case.field in ln for ln in lines), f"{case.field!r} not named: {lines}"
    assert case.fix in out, f"fix {case.fix!r} missing: {lines}"
    assert "fix: got " not in out and "{'" not in out, f"fix repeats the input: {lines}"
    assert not case.lines or len(lines) == case.lines, lines
    assert len(out) < 4000, "the error is too long (never the whole input)"
    assert not (box.home / "runs").exists(), "a run started"


def _check_accept(case: Case, box: Sandbox, res: Result) -> None:
    out = res.stdout + res.stderr
    assert res.exit_code == 0, out[-2000:]
    for text in case.shows:
        assert box.fill(text) in res.stdout, f"{box.fill(text)!r} not printed verbatim"
    if case.shell_word:
        word = box.fill(case.shell_word)
        commands = [ln.strip() for ln in res.stdout.splitlines() if ln.startswith("  ") and "=" in ln]
        words = [w for ln in commands if word.split("=")[0] in ln for w in bash_words(ln, box.root)]
        assert word in words, f"{word!r} is not one argv word after bash: {words}"
        assert not box.canary.exists()


def run_in_process(box: Sandbox, case: Case) -> Result:
    """Invoke the real typer app in this process (CliRunner)."""
    from typer.testing import CliRunner

    from scaling_matrix.cli import app

    env = {"SCALING_DB_URL": None, "SCALING_DB_BLOCK": None, **box.env(case)}
    res = CliRunner().invoke(app, box.argv(case), env=env)
    crashed = "" if res.exception is None or isinstance(res.exception, SystemExit) else repr(res.exception)
    return Result(res.exit_code, res.stdout, res.stderr, crashed)


def console_script() -> str:
    """Return the installed ``scaling-matrix`` console script of this interpreter's environment."""
    script = Path(sys.executable).parent / "scaling-matrix"
    assert script.is_file(), f"{script} missing: install the project (make install)"
    return str(script)


def run_subprocess(box: Sandbox, case: Case) -> Result:
    """Invoke the installed ``scaling-matrix`` console script as a real subprocess."""
    env = {k: v for k, v in os.environ.items() if k not in ("SCALING_DB_URL", "SCALING_DB_BLOCK")}
    done = subprocess.run([console_script(), *box.argv(case)], cwd=box.root, env={**env, **box.env(case)},
                          capture_output=True, text=True, timeout=120)
    return Result(done.returncode, done.stdout, done.stderr)


Invoker = Callable[[Sandbox, Case], Result]
