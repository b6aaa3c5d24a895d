"""Bulk fast path for NeMo 2 logs: many files in, one summary dict per file out (:func:`parse_files_bulk`).

Each summary holds the :data:`FIELDS` of ``parse-log --json``, equal to what
:func:`~scaling_matrix.parsing.summary.log_summary` gives for
:func:`~scaling_matrix.parsing.progress.parse_file`. Worker threads read batches of ~16 MiB of files
and scan them with the numba kernel of :mod:`~scaling_matrix.parsing.bulk_kernel` (extra ``fast``):
per line, 8 bytes a step to the next newline, ``T`` or ``|``; at the first ``Training epoch`` the
header and the ``| key: value`` items (keys of ``NEMO_PAIRS``, any order, the last valid value
wins); steps and step times are converted there, the other values only located. The same thread
then takes each file's unique steps (the last occurrence kept), converts the final loss, val loss,
batch size and samples with the rules' own ``num``, matches the stop-marker lines with the rule
itself and judges failures from the keyword lines of the whole file with the parser's own
:func:`~scaling_matrix.parsing.failures.judge` (signature, level, warning context, position against
the last progress line the kernel reports, completion).

A file the kernel cannot decide exactly goes to the Python parser, whole: numbers beyond 18 digits
or 10^+-22, ``_`` in a step or time (Python reads ``1_000``), a located key twice in a line,
AutoModel's ``| epoch `` or Megatron's ``consumed samples:`` (another format may win), a JSONL head,
progress markers but no step, too many steps or stop lines, an nvidia-smi CSV, no NeMo 2 step but NeMo 1's
``global_step=``. Without numba every file
goes there.
"""

from __future__ import annotations

import os
import queue
import re
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from scaling_matrix.parsing import bulk_kernel as K
from scaling_matrix.parsing import failures as F
from scaling_matrix.parsing.bulk_failures import Failures as _Failures
from scaling_matrix.parsing.engine import CHUNK_BYTES
from scaling_matrix.parsing.formats import NEMO1_RULES, NEMO_PAIRS, NEMO_RULES
from scaling_matrix.parsing.progress import parse_file
from scaling_matrix.parsing.rules import apply_rule, num
from scaling_matrix.parsing.smi import SmiCsv
from scaling_matrix.parsing.summary import log_summary

__all__ = ["FIELDS", "available", "parse_files_bulk", "python_summary", "scan_batch"]

#: keys of each summary (a subset of ``log_summary``'s)
FIELDS = ("format", "iterations", "last_global_step", "max_steps", "step_times_s", "final_train_loss",
          "last_val_loss", "global_batch_size", "consumed_samples", "completed", "reached_last_step",
          "stopped_at", "failure")
BATCH_BYTES = 16 << 20
_FIELD = {"global_step": 0, "step_time_s": 1, "train_loss": 2, "val_loss": 3, "global_batch_size": 4,
          "consumed_samples": 5}  # attribute -> kernel field: 0, 1 converted; 2-5 located (pos[:, field - 2])
_CAND, _STOPS = 64, 16  # keyword lines kept per file (more: the file is read here), stop lines (more: Python)
_NEMO1_MARKER = NEMO1_RULES[0].marker  # a file without NeMo 2 steps may be a NeMo 1 log
_WHOLE_FILE = 1 << 62  # the kernel's "tail": keyword lines are collected over the whole file
_OPENERS = b"{ \t\n\r\x0b\x0c"  # a JSONL log opens with one of these
_ITEM = re.compile(rb"[^|\n]*")


def _table(words: list[bytes]) -> tuple[np.ndarray, ...]:
    """Return the kernel's table of ``words``: 8-byte pieces (little-endian), masks of their valid bytes, per
    word its first piece, length and first byte, per byte value the first (sorted) word with it or -1."""
    pieces = [(int.from_bytes(w[k:k + 8], "little"), (1 << 8 * len(w[k:k + 8])) - 1)
              for w in words for k in range(0, len(w), 8)]
    first = [next((i for i, w in enumerate(words) if w[0] == c), -1) for c in range(256)]
    return (np.array([p for p, _ in pieces], np.uint64), np.array([m for _, m in pieces], np.uint64),
            np.cumsum([0] + [-(-len(w) // 8) for w in words]), np.array([len(w) for w in words]),
            np.array([w[0] for w in words]), np.array(first))


_KEYS = sorted(NEMO_PAIRS)
assert not any(a != b and b.startswith(a) for a in _KEYS for b in _KEYS), "the kernel needs prefix-free keys"
assert K.LITERAL_WORDS[:2] == (NEMO_RULES[0].marker, NEMO_RULES[2].marker), "the kernel's markers"
KEYS, LITERALS = _table(_KEYS), _table(list(K.LITERAL_WORDS))
WORDS = (*_table(sorted(F.KEYWORDS)), np.isin(np.arange(65536), [w[0] << 8 | w[1] for w in F.KEYWORDS]))
KEY_INFO = (np.array([_FIELD.get(NEMO_PAIRS[k][0].attr, -1) for k in _KEYS]),  # kernel field, -1: not needed
            np.array([any(kw in k for kw in F.KEYWORDS) for k in _KEYS]),  # the key holds a failure keyword
            np.isin(np.arange(256), list(b"0123456789.eE+- \t\r\x0b\x0c")))  # number bytes and blanks


def available() -> bool:
    """Return True when the numba kernel can run (the extra ``fast`` is installed)."""
    return K.njit is not None


def python_summary(path: str | Path) -> dict[str, Any]:
    """Return the :data:`FIELDS` of the Python parser's summary of the log at ``path``."""
    summary = log_summary(parse_file(path))
    return {key: summary[key] for key in FIELDS}


def scan_batch(a: np.ndarray, offs: np.ndarray, work: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
    """Return (rows, steps, times, pos, cand, stops, fo) of the files ``a[offs[f]:offs[f+1]]`` (``a``: 8-byte
    aligned, :data:`~scaling_matrix.parsing.bulk_kernel.PAD` bytes longer).

    File f's n records (``fo[f, 0]``, in log order) are rows ``rows[f]:rows[f] + n``: the step, the step
    time (NaN: none) and where train loss, val loss, batch size and samples start (-1: none). ``fo[f]``
    also holds max_steps (-1: none), flags, keyword lines (``cand[f, :k]``: start, end), stop-marker
    lines (``stops[f, :k]``), saw a progress marker, steps strictly increase, step times missing, and
    where the last progress line starts (-1: none).
    The arrays come from ``work``, grown as needed and kept (fresh pages cost page faults).
    """
    if a.size < offs[-1] + K.PAD:
        raise ValueError(f"the batch needs {K.PAD} readable bytes after its last file")
    rows = np.concatenate(([0], np.cumsum(np.diff(offs) // 64 + 16))).astype(np.int64)  # more: FALLBACK
    files = offs.size - 1
    for name, shape, dtype in (("steps", (rows[-1],), np.int64), ("times", (rows[-1],), np.float64),
                               ("pos", (rows[-1], 4), np.int64), ("cand", (files, _CAND, 2), np.int64),
                               ("stops", (files, _STOPS, 2), np.int64), ("fo", (files, 9), np.int64)):
        if name not in work or work[name].shape[0] < shape[0]:
            work[name] = np.empty((int(shape[0] * 1.25) + 1,) + shape[1:], dtype)
    out = [work[k] for k in ("steps", "times", "pos", "cand", "stops", "fo")]
    K.kernel(a, offs, rows, *out, KEYS, KEY_INFO, LITERALS, WORDS, _WHOLE_FILE)
    return rows, *out[:3], *(x[:files] for x in out[3:])


def _batches(paths: list[Any], batch_bytes: int) -> list[list[tuple[Any, int]]]:
    """Return ``paths`` with their sizes, in batches of about ``batch_bytes`` (a bigger file alone)."""
    out: list[list[tuple[Any, int]]] = []
    total = 0
    for p in paths:
        size = os.path.getsize(p)
        if not out or total + size > batch_bytes:
            out.append([])
            total = 0
        out[-1].append((p, size))
        total += size
    return out


def _read(batch: list[tuple[Any, int]], buf: np.ndarray, least: int) -> tuple[list[Any], np.ndarray, np.ndarray]:
    """Return the batch's paths, their bytes end to end in ``buf`` (a new one of at least ``least`` bytes
    when too small), :data:`~scaling_matrix.parsing.bulk_kernel.PAD` bytes longer, and their offsets."""
    total = sum(size for _, size in batch) + K.PAD
    buf = buf if buf.size >= total else np.empty(max(total, least), dtype=np.uint8)  # 8-byte aligned
    offs = [0]
    view = memoryview(buf)
    for path, size in batch:
        with open(path, "rb") as fh:  # a file that grew since it was listed: its first ``size`` bytes
            offs.append(offs[-1] + (fh.readinto(view[offs[-1]: offs[-1] + size]) or 0))
    return [p for p, _ in batch], buf[: offs[-1] + K.PAD], np.array(offs, dtype=np.int64)


def _jsonl(a: np.ndarray) -> bool:
    """Return True when the Python parser may read the file ``a`` as AutoModel's ``training.jsonl`` (its
    first chunk, up to the last newline in 8 MiB, opens with ``{`` and has ``"step"`` in 4 KiB)."""
    raw = a[:CHUNK_BYTES].tobytes()
    cut = raw.rfind(b"\n") + 1 or (len(raw) if a.size <= CHUNK_BYTES else 0)
    head = raw[:cut].lstrip()[:4096]
    return cut == 0 or (head.startswith(b"{") and b'"step"' in head)


def _raw(a: np.ndarray, p: int, e: int) -> bytes:
    """Return the value text at ``a[p:e]``: up to the next ``|`` or newline."""
    n = 64
    while True:
        chunk = a[p: min(e, p + n)].tobytes()
        raw = _ITEM.match(chunk).group()  # type: ignore[union-attr]
        if len(raw) < len(chunk) or p + n >= e:
            return raw
        n *= 4


def _final(a: np.ndarray, e: int, col: np.ndarray, top: int, copy: tuple[int, bytes]) -> float | None:
    """Return ``num`` of the highest step's valid value, as ``log_summary`` takes the last one: ``col``
    (``top``: its last) says where each step's value starts in ``a`` (-1: none), ``copy`` is ``a`` from
    some offset, for the top step; ``e``: the file's end."""
    if top >= 0:  # the usual case: the top step has one
        m = _ITEM.match(copy[1], top - copy[0])
        value = num(m.group() if m and m.end() < len(copy[1]) else _raw(a, top, e))
        if value is not None:
            return value
        col = col[:-1]
    for p in col[col >= 0][::-1].tolist():
        value = num(_raw(a, p, e))
        if value is not None:
            return value
    return None


def _stopped(a: np.ndarray, spans: list[int]) -> int | None:
    """Return ``n`` of the last stop-marker line (``spans``: start, end, ... in ``a``) the Python rule
    matches, else None."""
    for i, j in reversed(list(zip(spans[::2], spans[1::2]))):
        values = apply_rule(NEMO_RULES[2], a[i:j].tobytes())
        if values is not None and isinstance(values.get("n"), int):
            return int(values["n"])
    return None


def _intish(v: float | None) -> int | float | None:
    """Return integral floats as ints, others unchanged (as ``log_summary`` does)."""
    return int(v) if v is not None and v.is_integer() else v


def _summary(a: np.ndarray, s: int, e: int, rec: tuple[np.ndarray, ...], fo: list[int],
             spans: tuple[list[int], ...], failures: _Failures) -> dict[str, Any]:
    """Return the summary of the file ``a[s:e]`` from its records ``rec`` (steps, times, pos), ``fo`` and
    its keyword and stop-marker lines ``spans`` (start, end, ...) of :func:`scan_batch`."""
    steps, times, pos = rec
    if not fo[6]:  # steps repeat or go back: keep each step's last occurrence, in step order
        order = np.argsort(steps, kind="stable")
        keep = order[np.append(steps[order][1:] != steps[order][:-1], True)]
        steps, times, pos = steps[keep], times[keep], pos[keep]
    st = times.tolist()
    if fo[7]:  # step times missing
        st = [None if t != t else t for t in st]
    u, ms, stopped, failure = len(st), fo[1] if fo[1] >= 0 else None, _stopped(a, spans[1]), None
    reached = stopped is not None or bool(u and ms and int(steps[-1]) >= ms - 1)
    if spans[0] or fo[2] & K.TAILPY:
        failure = failures.judge(a, s, e, fo[2], spans[0], fo[8], reached)
    tops = pos[-1].tolist() if u else [-1] * 4
    lo, hi = min((p for p in tops if p >= 0), default=0), max(tops)
    copy = (lo, a[lo: min(e, hi + 64)].tobytes() if hi >= 0 else b"")
    loss, val, gbs, samples = (_final(a, e, pos[:, c], tops[c], copy) for c in range(4))
    return {"format": "nemo" if u else "unknown", "iterations": u,
            "last_global_step": int(steps[-1]) if u else None, "max_steps": ms, "step_times_s": st,
            "final_train_loss": loss, "last_val_loss": val,
            "global_batch_size": _intish(gbs), "consumed_samples": _intish(samples),
            "completed": reached and failure is None, "reached_last_step": reached, "stopped_at": stopped,
            "failure": failure}


def _summaries(paths: list[Any], a: np.ndarray, offs: np.ndarray, scan: tuple[np.ndarray, ...],
               failures: _Failures) -> dict[Any, dict[str, Any]]:
    """Return the summaries of one scanned batch (``scan``: :func:`scan_batch` of ``a``, ``offs``)."""
    rows, steps, times, pos, cand, stops, fo = scan
    bounds, starts, firsts, out = offs.tolist(), rows.tolist(), a[offs[:-1]].tolist(), {}
    for f, info in enumerate(fo.tolist()):
        s, e, r0, n = bounds[f], bounds[f + 1], starts[f], info[0]
        if info[2] & K.FALLBACK or (n == 0 and info[5]) or (e > s and firsts[f] in _OPENERS and _jsonl(a[s:e])) \
                or (firsts[f] == 116 and SmiCsv.sniff(a[s: min(e, s + 4096)].tobytes())) \
                or (n == 0 and _NEMO1_MARKER in a[s:e].tobytes()):  # "t": nvidia-smi CSV; NeMo 1 tqdm bar
            out[paths[f]] = python_summary(paths[f])
            continue
        spans = (cand[f, :info[3]].ravel().tolist(), stops[f, :info[4]].ravel().tolist())  # start, end, ...
        rec = (steps[r0:r0 + n], times[r0:r0 + n], pos[r0:r0 + n])
        out[paths[f]] = _summary(a, s, e, rec, info, spans, failures)
    return out


def parse_files_bulk(paths: Iterable[str | Path], batch_bytes: int = BATCH_BYTES,
                     threads: int | None = None) -> dict[Any, dict[str, Any]]:
    """Return ``{path: summary}`` for NeMo 2 logs: per file the :data:`FIELDS` of ``parse-log --json``.

    Equal to :func:`python_summary` of each path (which runs instead where the kernel cannot decide
    exactly, and for every file without numba); the keys are the given paths. ``threads`` (default:
    the CPU count, at most 8) each read, scan and summarise one batch at a time (the kernel runs
    without the GIL, so one thread's Python overlaps another's scan).
    """
    items = list(paths)
    if not available():
        return {p: python_summary(p) for p in items}
    threads = threads or min(os.cpu_count() or 1, 8)
    slots: queue.SimpleQueue[tuple[np.ndarray, dict[str, np.ndarray], _Failures]] = queue.SimpleQueue()
    for _ in range(threads + 1):  # a buffer, output arrays and a failure cache per batch in flight, reused
        slots.put((np.empty(0, np.uint8), {}, _Failures()))

    def summarise(batch: list[tuple[Any, int]]) -> dict[Any, dict[str, Any]]:
        buf, work, failures = slots.get()
        try:
            names, a, offs = _read(batch, buf, batch_bytes + K.PAD)
            buf = a.base if a.base is not None else a  # kept: maybe grown
            return _summaries(names, a, offs, scan_batch(a, offs, work), failures)
        finally:  # always given back, so no worker waits for a slot after an error
            slots.put((buf, work, failures))

    out: dict[Any, dict[str, Any]] = {}
    with ThreadPoolExecutor(max_workers=threads) as pool:
        try:
            for summaries in pool.map(summarise, _batches(items, batch_bytes)):
                out.update(summaries)
        finally:
            pool.shutdown(cancel_futures=True)
    return out
