"""Fatal failure signatures in a log's tail: the project's taxonomy plus HF auth and missing checkpoints.

Rule: a fatal error ends the job, so its signature is in the last :data:`TAIL_BYTES` of the log
(a multi-rank traceback fits many times over). Lines of the tail that contain one of
:data:`KEYWORDS` are candidates; :func:`scaling_matrix.outcome.match_signature` classifies them
(its order decides: OOM before NCCL timeout before ...). Signatures it does not know yet are in
:data:`EXTRA_SIGNATURES`; their class is the ``FailureClass`` of that name once it exists,
until then the given fallback (``config_error``). Facts: shared/reference/nemo.md §9.
"""

from __future__ import annotations

import re

from scaling_matrix.outcome import FailureClass, match_signature

TAIL_BYTES = 64 * 1024

#: Literal substrings that every known fatal signature contains (cheap candidate filter).
KEYWORDS: tuple[bytes, ...] = (
    b"emory", b"oom-kill", b"Watchdog", b"NCCL", b"imed out", b"DUE TO", b"execve", b"not found",
    b"FATAL", b"Unexpected error", b"Client Error", b"gated repo", b"GatedRepo", b"checkpoint",
)

#: (name, fallback class, pattern) for signatures the taxonomy does not know yet.
EXTRA_SIGNATURES: tuple[tuple[str, FailureClass, re.Pattern[str]], ...] = (
    ("hf_auth", FailureClass.CONFIG_ERROR,
     re.compile(r"GatedRepoError|Cannot access gated repo|\b40[13] Client Error")),
    ("no_checkpoint", FailureClass.CONFIG_ERROR,
     re.compile(r"There were no checkpoints found|Last checkpoint is unfinished and cannot be used to resume")),
)


def candidate_lines(tail: bytes) -> list[str]:
    """Return the lines of ``tail`` (decoded, in order, each once) containing any of :data:`KEYWORDS`."""
    starts: set[int] = set()
    for kw in KEYWORDS:
        i = tail.find(kw)
        while i >= 0:
            s = tail.rfind(b"\n", 0, i) + 1
            starts.add(s)
            e = tail.find(b"\n", i)
            if e < 0:
                break
            i = tail.find(kw, e)
    out = []
    for s in sorted(starts):
        e = tail.find(b"\n", s)
        out.append(tail[s: e if e >= 0 else None].decode("utf-8", "replace").rstrip("\r"))
    return out


def _class_name(name: str, fallback: FailureClass) -> str:
    """Return the value of ``FailureClass(name)`` when the taxonomy has it, else ``fallback``'s."""
    try:
        return FailureClass(name).value
    except ValueError:
        return fallback.value


def find_failure(tail: bytes) -> tuple[str, str, str] | None:
    """Return (class, signature name, line) of the fatal signature in ``tail``, or None.

    The signature name is the class for the taxonomy's own signatures, else ``hf_auth`` /
    ``no_checkpoint`` (useful while those map to a fallback class).
    """
    lines = candidate_lines(tail)
    if not lines:
        return None
    hit = match_signature("\n".join(lines))
    if hit is not None:
        return hit[0].value, hit[0].value, hit[1]
    for name, fallback, pattern in EXTRA_SIGNATURES:
        for line in lines:
            if pattern.search(line):
                return _class_name(name, fallback), name, line.strip()[:300]
    return None
