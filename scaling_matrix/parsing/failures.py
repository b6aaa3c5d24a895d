"""Fatal failure signatures in a log's tail: the project's taxonomy plus HF auth and missing checkpoints.

Rule: a fatal error ends the job, so its signature is in the last :data:`TAIL_BYTES` of the log
(a multi-rank traceback fits many times over). Lines of the tail that contain one of
:data:`KEYWORDS` are candidates; :func:`scaling_matrix.outcome.match_signature` classifies them
(its order decides: OOM before NCCL timeout before ... HF auth, missing checkpoint, config error).
Facts: shared/reference/nemo.md §9.
"""

from __future__ import annotations

from scaling_matrix.outcome import match_signature

TAIL_BYTES = 64 * 1024

#: Literal substrings that every known fatal signature contains (cheap candidate filter).
KEYWORDS: tuple[bytes, ...] = (
    b"emory", b"oom-kill", b"Watchdog", b"NCCL", b"imed out", b"DUE TO", b"execve", b"not found",
    b"FATAL", b"Unexpected error", b"Client Error", b"gated repo", b"GatedRepo", b"checkpoint",
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


def find_failure(tail: bytes) -> tuple[str, str, str] | None:
    """Return (class, signature name, line) of the fatal signature in ``tail``, or None (the signature
    name is the class: every signature belongs to the taxonomy)."""
    lines = candidate_lines(tail)
    if not lines:
        return None
    hit = match_signature("\n".join(lines))
    return None if hit is None else (hit[0].value, hit[0].value, hit[1])
