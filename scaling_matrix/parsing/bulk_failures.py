"""The bulk scanner's failure judgement: kernel keyword lines in, the parser's own verdict out.

The kernel reports every keyword line of a file (start, end) and where its last progress line starts;
here each line becomes a :class:`~scaling_matrix.parsing.failures.Signature` with the same context
lines the per-line parser reads, and :func:`~scaling_matrix.parsing.failures.judge` decides.
"""

from __future__ import annotations

import numpy as np

from scaling_matrix.parsing import bulk_kernel as K
from scaling_matrix.parsing import failures as F


class Failures:
    """Failure judgements from keyword lines (each distinct line classified once per worker slot)."""

    def __init__(self) -> None:
        self.lines: dict[bytes, bool] = {}  # line -> it matches a signature

    def judge(self, a: np.ndarray, s: int, e: int, flags: int, spans: list[int], last: int,
              finished: bool) -> str | None:
        """Return the failure class of the file ``a[s:e]`` from its keyword lines ``spans`` (start, end, ...;
        the whole file when flagged), its last progress line's start ``last`` (-1: none) and completion."""
        if finished:
            return None
        if flags & K.TAILPY:  # more keyword lines than the kernel keeps: read the file here
            sigs = [sig for sig, _ in F.scan(a[s:e].tobytes())]
        else:
            sigs = []
            for i, j in zip(spans[::2], spans[1::2]):
                raw = a[i:j].tobytes()
                if self.lines.get(raw, True):
                    sig = F.signature(raw.decode("utf-8", "replace").rstrip("\r"), self._after(a, j, e), i - s)
                    self.lines[raw] = sig is not None
                    sigs += [sig] if sig is not None else []
        verdict = F.judge(sigs, None if last < 0 else last - s, False)
        return None if verdict.failure is None else verdict.failure.klass

    @staticmethod
    def _after(a: np.ndarray, j: int, e: int) -> list[str]:
        """Return the (up to two) context lines after the line ending at ``j``, as the parser reads them."""
        out, p = [], j + 1
        while len(out) < F.CONTEXT_LINES and p < e:
            q = end = p
            while q < e:
                hit = np.flatnonzero(a[q: min(e, q + 4096)] == 10)
                if hit.size:
                    end = q + int(hit[0])
                    break
                q = end = min(e, q + 4096)
            out.append(a[p:end].tobytes().decode("utf-8", "replace").rstrip("\r"))
            p = end + 1
        return out
