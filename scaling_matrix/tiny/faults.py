"""Fault injection for the tiny engine. TEST TOOLING: off unless ``SCALING_TINY_FAULT`` is set.

The tiny engine fails here the way NeMo fails on GPUs, in the real failure's own words (the texts
are PyTorch's, Lightning's and SLURM-visible signals; shared/real-logs 17, 19, 27 and
shared/reference/nemo.md §9), so the failure taxonomy, the retries and the scheduler's handling
are exercised against a real process instead of a fixture string::

    SCALING_TINY_FAULT=<kind>[@<step>|@import][,seconds=<s>][,rank=<r>][,once]

* ``oom``           raise ``torch.OutOfMemoryError`` (CUDA OOM text) before step N; exit 1
* ``nccl_timeout``  print the NCCL watchdog timeout lines before step N and abort (SIGABRT, 134)
* ``hang``          stop making progress before step N (``seconds``: for that long, then go on)
* ``segv``          a real segmentation fault (NULL read; faulthandler prints Python's report)
* ``sigkill``       SIGKILL itself before step N (as the kernel's OOM killer or an admin would)
* ``config_error``  exit 1 at launch with a configuration error (Lightning's ``--ntasks`` text)
* ``noise``         benign warnings and non-fatal tracebacks at launch, before step N and after the
                    end; the run completes

``@import``: fire in ``llm import`` after the weights are written and before ``context/io.json``
(the completeness marker); ``hang`` and ``sigkill`` only. ``rank``: only that global rank fires
(default every rank). ``once``: fire only while no marker file from an earlier firing exists (the
marker lives beside the log dir or the import target, so a retried attempt runs clean).
"""

from __future__ import annotations

import ctypes
import faulthandler
import os
import signal
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from scaling_matrix.tiny import fault_texts as texts

ENV = "SCALING_TINY_FAULT"
STEP_KINDS = ("oom", "nccl_timeout", "hang", "segv", "sigkill", "noise")
KINDS = (*STEP_KINDS, "config_error")
IMPORT_KINDS = ("hang", "sigkill")


@dataclass(frozen=True)
class Fault:
    """One injected fault: its kind, where it fires (``step`` None: the import) and its options."""

    kind: str
    step: int | None = 0
    seconds: float | None = None
    rank: int | None = None
    once: bool = False


def _option(fault: Fault, item: str) -> Fault:
    """Return ``fault`` with one ``key=value`` / ``once`` option applied."""
    key, _, value = item.partition("=")
    if key == "once" and not value:
        return Fault(fault.kind, fault.step, fault.seconds, fault.rank, True)
    if key == "seconds":
        return Fault(fault.kind, fault.step, float(value), fault.rank, fault.once)
    if key == "rank":
        return Fault(fault.kind, fault.step, fault.seconds, int(value), fault.once)
    raise ValueError(f"unknown option {item!r} (use seconds=<s>, rank=<r> or once)")


def parse_fault(text: str) -> Fault:
    """Return the fault described by ``text`` (the grammar in this module's docstring).

    Raises:
        ValueError: an unknown kind or option, a negative step, or a kind that cannot fire there.
    """
    head, *options = [t.strip() for t in text.split(",") if t.strip()] or [""]
    kind, _, where = head.partition("@")
    if kind not in KINDS:
        raise ValueError(f"{ENV}: unknown fault {kind!r} (use one of {', '.join(KINDS)})")
    step = None if where == "import" else int(where or 0)
    if step is not None and step < 0:
        raise ValueError(f"{ENV}: step must be 0 or more, got {step}")
    if step is None and kind not in IMPORT_KINDS:
        raise ValueError(f"{ENV}: '{kind}' cannot fire during the import (use {' or '.join(IMPORT_KINDS)})")
    fault = Fault(kind, step)
    for item in options:
        fault = _option(fault, item)
    return fault


class Injector:
    """Fires one fault in one process (rank) at the points the engine calls; inert without a fault."""

    def __init__(self, fault: Fault | None, rank: int = 0, local_rank: int = 0,
                 marker: Path | None = None) -> None:
        self.fault, self.rank, self.local_rank, self.marker = fault, rank, local_rank, marker
        fires_here = fault is not None and fault.rank in (None, rank)
        self.armed = fires_here and not (fault.once and marker is not None and marker.exists())

    def _fires(self, kind: str | None = None, step: int | None = -1) -> bool:
        f = self.fault
        return self.armed and f is not None and (kind is None or f.kind == kind) and (step == -1 or f.step == step)

    def _fire(self) -> None:
        """Leave the ``once`` marker (before firing: SIGKILL leaves no later chance) and disarm."""
        self.armed = False
        if self.fault is not None and self.fault.once and self.marker is not None and self.rank in (0, self.fault.rank):
            self.marker.parent.mkdir(parents=True, exist_ok=True)
            self.marker.write_text(f"{self.fault.kind} fired {datetime.now().isoformat()}\n")

    def at_launch(self) -> None:
        """Configuration errors and the launch noise happen before any training."""
        if self._fires("config_error"):
            self._fire()
            raise ValueError(texts.CONFIG_ERROR)
        if self._fires("noise"):
            say(texts.launch_noise())

    def at_step(self, step: int) -> None:
        """Fire a step fault before training step ``step`` (0-based global step)."""
        if not self._fires(step=step) or self.fault is None or self.fault.kind == "config_error":
            return
        kind = self.fault.kind
        if kind != "noise":
            self._fire()
        STEP_ACTIONS[kind](self)

    def at_end(self) -> None:
        """The noise printed after training ended (teardown warnings)."""
        if self.fault is not None and self.fault.kind == "noise" and self.fault.rank in (None, self.rank):
            say(texts.end_noise(self.rank))

    def at_import(self) -> None:
        """Fire an import fault (between the weights and the completeness marker)."""
        if self._fires(step=None) and self.fault is not None:
            self._fire()
            STEP_ACTIONS[self.fault.kind](self)


def say(lines: list[str]) -> None:
    """Print ``lines`` to stderr, flushed (where PyTorch and Python print theirs)."""
    for line in lines:
        print(line, file=sys.stderr, flush=True)


def _oom(inj: Injector) -> None:
    import torch

    error = torch.OutOfMemoryError(texts.oom_message(inj.local_rank))
    try:
        raise error
    except torch.OutOfMemoryError:
        say([f"[rank{inj.rank}]: {line}" for line in traceback.format_exc().rstrip().splitlines()])
        raise


def _nccl_timeout(inj: Injector) -> None:
    say(texts.nccl_watchdog(inj.rank, datetime.now()))
    os.abort()  # what c10's terminate handler does: SIGABRT, exit 134 under srun/bash


def _hang(inj: Injector) -> None:
    seconds = inj.fault.seconds if inj.fault is not None else None
    deadline = None if seconds is None else time.monotonic() + seconds
    while deadline is None or time.monotonic() < deadline:
        time.sleep(0.1)


def _segv(inj: Injector) -> None:
    faulthandler.enable(file=sys.stderr, all_threads=True)
    ctypes.string_at(0)  # a real NULL read: SIGSEGV from the kernel


def _sigkill(inj: Injector) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def _noise(inj: Injector) -> None:
    """Warnings and a logged traceback in the middle of a run that goes on."""
    say(texts.step_noise(inj.rank, datetime.now()))
    try:
        raise ConnectionRefusedError(111, "Connection refused")
    except ConnectionRefusedError:
        details = traceback.format_exc()
    say(["[WARNING  | tiny.telemetry    ]: failed to upload metrics; training goes on", details.rstrip()])
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        # a warning whose text holds a whole traceback (shared/real-logs 27): Python prints its source line after it
        warnings.warn(
            f"Scoring failed. The score on this train-test partition will be set to nan. Details: \n{details}",
            UserWarning, stacklevel=1)


STEP_ACTIONS: dict[str, Callable[[Injector], None]] = {
    "oom": _oom, "nccl_timeout": _nccl_timeout, "hang": _hang, "segv": _segv, "sigkill": _sigkill, "noise": _noise,
}


def marker_for(base: Path, kind: str) -> Path:
    """Return the ``once`` marker beside ``base`` (a log dir or an import target)."""
    return base.parent / f".{base.name}.tiny-fault-{kind}.fired"


def injector_from_env(env: Mapping[str, str], rank: int, local_rank: int, base: Path) -> Injector:
    """Return the injector of this process: inert unless ``SCALING_TINY_FAULT`` is set.

    Raises:
        ValueError: the variable is set to something the grammar does not accept.
    """
    text = (env.get(ENV) or "").strip()
    fault = parse_fault(text) if text else None
    return Injector(fault, rank, local_rank, marker_for(base, fault.kind) if fault else None)


__all__ = ["ENV", "KINDS", "Fault", "Injector", "injector_from_env", "marker_for", "parse_fault"]
