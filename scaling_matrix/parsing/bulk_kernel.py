"""Numba kernel of :mod:`~scaling_matrix.parsing.bulk`: a batch of NeMo 2 logs as raw bytes in, per-file arrays out.

All jitted code lives here (numba's cache checks only the file of the function it caches). Speed:
no reference counting, unsigned indices, 8 bytes a step where possible, and functions taking table
tuples inlined in numba IR (a call would pass every array field).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

try:
    from numba import njit
except ImportError:  # optional extra "fast"
    njit = None

FALLBACK, UNCLEAN, KWKEY, TAILPY, STOPLINE = 1, 2, 4, 8, 16  # flags of a file (1, 8) or a line
PAD = 32  # readable bytes needed after a batch's last file (8-byte loads)
LITERAL_WORDS = (b"Training epoch", b"Trainer.fit` stopped", b" epoch ", b"consumed samples:", b", iteration ", b"_")
_TE, _STOP, _EPOCH, _CONSUMED, _ITERATION, _UNDERSCORE = range(6)  # their indices in the LITERALS table
_P10 = np.array([10.0**k for k in range(23)])  # exact powers of ten
_LO, _HI = np.uint64(0x0101010101010101), np.uint64(0x8080808080808080)
_EV = tuple(np.uint64(0x0101010101010101 * c) for c in b"\nT|")
_BLANK = np.isin(np.arange(256), list(b" \t\r\x0b\x0c"))  # what bytes.strip and float() drop, inside a line


def jit(**options: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Return numba's ``njit`` (cached, GIL released) with ``options``, or a no-op without numba."""
    return (lambda f: f) if njit is None else njit(cache=True, nogil=True, **options)


PLAIN, INLINE = {"_nrt": False}, {"_nrt": False, "inline": "always"}


@jit(**PLAIN)
def at(x, i):  # type: ignore[no-untyped-def]
    """Return ``x[i]`` for an index known to be >= 0."""
    return x[np.uint64(i)]


@jit(**INLINE)
def _eq(w, i, e, T, k):  # type: ignore[no-untyped-def]
    """Return True when word k of table T is at ``a[i:e]`` (``w``: ``a`` as uint64 words), 8 bytes a step."""
    if i < 0 or i + at(T[3], k) > e:
        return False
    for m in range(at(T[2], k), at(T[2], k + 1)):
        p = i + 8 * (m - at(T[2], k))
        sh = np.uint64(8 * (p & 7))
        v = at(w, p >> 3) if sh == 0 else (at(w, p >> 3) >> sh) | (at(w, (p >> 3) + 1) << (np.uint64(64) - sh))
        if (v & at(T[1], m)) != at(T[0], m):
            return False
    return True


@jit(**INLINE)
def _word(a, w, i, e, T):  # type: ignore[no-untyped-def]
    """Return the index of the first word of table T (sorted) at ``a[i:e]``, or -1."""
    k = at(T[5], at(a, i)) if i < e else -1
    while 0 <= k < T[3].size and at(T[4], k) == at(a, i):
        if _eq(w, i, e, T, k):
            return k
        k += 1
    return -1


@jit(**INLINE)
def _find(a, w, s, e, T, k):  # type: ignore[no-untyped-def]
    """Return True when word k of table T occurs in ``a[s:e]``."""
    for p in range(s, e - at(T[3], k) + 1):
        if at(a, p) == at(T[4], k) and _eq(w, p, e, T, k):
            return True
    return False


@jit(**PLAIN)
def _digits(a, i, e):  # type: ignore[no-untyped-def]
    """Return (value of the first 18 digits, end, digit count) of the ASCII digits at ``a[i:e]``."""
    v, j = 0, i
    while j < e and 48 <= at(a, j) <= 57:
        if j - i < 18:
            v = v * 10 + np.int64(at(a, j)) - 48
        j += 1
    return v, j, j - i


@jit(**PLAIN)
def number(a, i, e):  # type: ignore[no-untyped-def]
    """Return (syntax ok, float exact, value, plain int, int exact, int, end) of blanks, a number
    ``[+-](d+[.d*]|.d+)[(e|E)[+-]d+]`` and blanks at ``a[i:e]`` (``end``: where that stops)."""
    while i < e and _BLANK[at(a, i)]:
        i += 1
    neg, sign = i < e and at(a, i) == 45, i < e and (at(a, i) == 43 or at(a, i) == 45)
    i, mant, dexp, nd, lost, dot = i + sign, 0, 0, 0, False, 0
    while i < e and (48 <= at(a, i) <= 57 or (at(a, i) == 46 and dot == 0)):
        d = np.int64(at(a, i)) - 48
        if d < 0:  # the '.'
            dot = 1
        elif mant < 100000000000000000:  # keep 18 significant digits
            mant, dexp, nd = mant * 10 + d, dexp - dot, nd + 1
        else:
            dexp, lost, nd = dexp + 1 - dot, lost or d != 0, nd + 1
        i += 1
    plain, ne = dot == 0, 1
    if nd and i < e and (at(a, i) == 101 or at(a, i) == 69):
        k = i + 1 + (1 if i + 1 < e and (at(a, i + 1) == 43 or at(a, i + 1) == 45) else 0)
        ex, i, ne = _digits(a, k, e)
        dexp, lost, plain = dexp + (-ex if at(a, k - 1) == 45 else ex), lost or ne > 6, False
    while i < e and _BLANK[at(a, i)]:
        i += 1
    fexact = mant == 0 or (not lost and mant < 9007199254740992 and -22 <= dexp <= 22)  # one rounding
    val = 0.0 if mant == 0 or not fexact else (mant * _P10[dexp] if dexp >= 0 else mant / _P10[-dexp])
    return nd > 0 and ne > 0, fexact, -val if neg else val, plain, plain and nd <= 18, -mant if neg else mant, i


@jit(**INLINE)
def _value(num, field, q, times, pos, r, gs, gs_ok):  # type: ignore[no-untyped-def]
    """Return (flags, step, step seen) after taking ``num`` (:func:`number` of the text at ``q``) as row r's
    step (field 0, as ``integer``), step time (1, as ``num``) or, for 2-5, where the value starts."""
    syn, fx, val, plain, ix, ival, _ = num
    if field >= 2:  # a second one in the row: FALLBACK
        dup, pos[r, field - 2] = at(pos[r], field - 2) >= 0, q
        return FALLBACK if dup else 0, gs, gs_ok
    if field != 0:  # 1: the step time; -1: a key not needed
        times[r] = val if fx and field == 1 else times[r]
        return 0 if fx or field < 0 else FALLBACK, gs, gs_ok
    if plain:  # integer(): int(raw), else an integral float
        return 0 if ix else FALLBACK, ival if ix else gs, gs_ok or ix
    if fx and val == np.floor(val) and abs(val) < 9e18:
        return 0, np.int64(val), True
    return 0 if fx else FALLBACK, gs, gs_ok


@jit(**INLINE)
def _key(a, w, i, e, KT):  # type: ignore[no-untyped-def]
    """Return (key, after its ``:``) of the known key opening the item at ``a[i:e]``, else (-1, first non-blank)."""
    while i < e and _BLANK[at(a, i)]:
        i += 1
    k = _word(a, w, i, e, KT)  # the only candidate: no key is a prefix of another
    j = i + at(KT[3], k) if k >= 0 else e
    while j < e and _BLANK[at(a, j)]:
        j += 1
    return (k, j + 1) if k >= 0 and j < e and at(a, j) == 58 else (-1, i)


@jit(**PLAIN)
def _slow_item(a, w, i, e, KT, KI, LT, times, pos, r, gs, gs_ok):  # type: ignore[no-untyped-def]
    """Return (end, flags, step, step seen) of any item at ``a[i:e]``, read byte by byte."""
    colon, flags, j = -1, UNCLEAN, i
    while j < e and at(a, j) != 124 and at(a, j) != 10:
        colon = j if colon < 0 and at(a, j) == 58 else colon
        flags |= STOPLINE if at(a, j) == 84 and _eq(w, j, e, LT, _STOP) else 0
        j += 1
    flags |= FALLBACK if _find(a, w, i, j, LT, _CONSUMED) else 0
    kid, q = _key(a, w, i, colon + 1, KT) if colon >= 0 else (-1, i)
    if kid >= 0:
        num = number(a, q, j)
        if num[0] and num[6] == j:
            f2, gs, gs_ok = _value(num, at(KI[0], kid), q, times, pos, r, gs, gs_ok)
            flags |= f2
        elif _find(a, w, q, j, LT, _UNDERSCORE):  # Python reads 1_000
            flags |= FALLBACK
    return j, flags, gs, gs_ok


@jit(**INLINE)
def _items(a, w, t, e, KT, KI, LT, times, pos, r):  # type: ignore[no-untyped-def]
    """Return (line end, flags, step, step seen) of the items at ``a[t:e]``, noted in row r."""
    times[r], pos[r, :] = np.nan, -1
    gs, gs_ok, flags, i = 0, False, 0, t
    while True:
        kid, j = _key(a, w, i, e, KT)
        field = at(KI[0], kid) if kid >= 0 else -9
        end = j if field == -9 and (j >= e or at(a, j) == 124 or at(a, j) == 10) else -1  # a blank item
        if 0 <= field <= 1:  # parsed on every line
            num = number(a, j, e)
            if num[0] and (num[6] >= e or at(a, num[6]) == 124 or at(a, num[6]) == 10):
                f2, gs, gs_ok = _value(num, field, j, times, pos, r, gs, gs_ok)
                flags, end = flags | f2, num[6]
        elif field != -9:  # number bytes and blanks only here; fields 2-5 are parsed where needed
            k = j
            while k < e and at(KI[2], at(a, k)):
                k += 1
            if k >= e or at(a, k) == 124 or at(a, k) == 10:
                f2, gs, gs_ok = _value((True, True, 0.0, False, False, 0, k), field, j, times, pos, r, gs, gs_ok)
                flags, end = flags | f2, k
        flags |= KWKEY if kid >= 0 and at(KI[1], kid) else 0
        if end < 0:
            end, f2, gs, gs_ok = _slow_item(a, w, i, e, KT, KI, LT, times, pos, r, gs, gs_ok)
            flags |= f2
        if end >= e or at(a, end) == 10:
            return end, flags, gs, gs_ok
        flags |= FALLBACK if at(a, end + 1) == 32 and _eq(w, end + 1, e, LT, _EPOCH) else 0
        i = end + 1


@jit(**INLINE)
def _header(a, w, i, e, LT):  # type: ignore[no-untyped-def]
    """Return (0 no match / 1 ok / 2 too long, epoch, iteration, N, end) of ``Training epoch E, iteration I/N`` at i."""
    ep, j, n1 = _digits(a, i + at(LT[3], _TE) + 1, e)
    if at(a, i + at(LT[3], _TE)) != 32 or n1 == 0 or not _eq(w, j, e, LT, _ITERATION):
        return 0, 0, 0, 0, j
    it, j, n2 = _digits(a, j + at(LT[3], _ITERATION), e)
    if n2 == 0 or j >= e or at(a, j) != 47:
        return 0, 0, 0, 0, j
    n, j, n3 = _digits(a, j + 1, e)
    return (0 if n3 == 0 else 2 if max(n1, n2, n3) > 18 else 1), ep, it, n, j


@jit(**INLINE)
def _next_event(a, w, i, e):  # type: ignore[no-untyped-def]
    """Return the index of the next newline, ``T`` or ``|`` in ``a[i:e]`` (``e`` if none), 8 bytes a step."""
    while i < e:
        if i & 7 == 0 and i + 8 <= e:
            v = at(w, i >> 3)
            x0, x1, x2 = v ^ _EV[0], v ^ _EV[1], v ^ _EV[2]
            if not ((x0 - _LO) & ~x0 | (x1 - _LO) & ~x1 | (x2 - _LO) & ~x2) & _HI:
                i += 8
                continue
        if at(a, i) == 10 or at(a, i) == 84 or at(a, i) == 124:
            return i
        i += 1
    return e


@jit(**INLINE)
def _line(a, w, ls, e, KT, KI, LT, times, pos, r):  # type: ignore[no-untyped-def]
    """Return (end, flags, marker at, parsed, epoch, N, step) of the line at ``ls``, noted in row r."""
    i, te, flags, pipe = ls, -1, 0, False
    while True:
        i = _next_event(a, w, i, e)
        if i >= e or at(a, i) == 10:
            pipe = pipe and _find(a, w, ls, i, LT, _CONSUMED)  # Megatron's step lines have a "|"
            return i, flags | (FALLBACK if pipe else 0), te, False, 0, 0, 0
        if at(a, i) == 84 and te < 0 and _eq(w, i, e, LT, _TE):
            te = i
            ok, ep, it, n, t = _header(a, w, i, e, LT)
            if ok == 1:
                le, f2, gs, gs_ok = _items(a, w, t, e, KT, KI, LT, times, pos, r)
                flags |= f2 | (FALLBACK if _find(a, w, ls, te, LT, _CONSUMED) else 0)
                return le, flags, te, True, ep, n, gs if gs_ok else it
            flags |= FALLBACK if ok == 2 else 0
        elif at(a, i) == 84:
            flags |= STOPLINE if _eq(w, i, e, LT, _STOP) else 0
        elif at(a, i) == 124:
            pipe = True
            flags |= FALLBACK if _eq(w, i + 1, e, LT, _EPOCH) else 0
        i += 1


@jit(**PLAIN)
def _scan_file(a, w, s, e, r0, cap, steps, times, pos, cand, stops,  # type: ignore[no-untyped-def]
               KT, KI, LT, WT, tail):
    """Return (records, max_steps, flags, keyword lines, stop lines, saw a marker, steps increase, start of the
    last progress line or -1) of the file ``a[s:e]``; records in rows ``r0:r0+cap`` (more: FALLBACK), lines as
    (start, end) in ``cand``/``stops``; keyword lines only in the last ``tail`` bytes (more: TAILPY)."""
    t0, flags = s, 0
    if e - s > tail:  # the Python tail: the last 64 KiB minus its first partial line
        q = e - tail
        while q < e and at(a, q) != 10:
            q += 1
        t0, flags = (e + 1, TAILPY) if q >= e else (q + 1, 0)
    n, ms, nc, ns, seen, rising, ls, lastp = 0, -1, 0, 0, False, True, s, -1
    while ls < e:
        le, lf, te, parsed, ep, nn, step = _line(a, w, ls, e, KT, KI, LT, times, pos, r0 + min(n, cap - 1))
        flags, seen = flags | (lf & FALLBACK) | (FALLBACK if parsed and n == cap else 0), seen or te >= 0
        if parsed and n < cap:
            rising = rising and (n == 0 or step > steps[r0 + n - 1])
            steps[r0 + n], ms, n, lastp = step, nn + 1 if ep == 0 or ms < 0 else ms, n + 1, ls
        if lf & STOPLINE and ns < stops.shape[0]:
            stops[ns, 0], stops[ns, 1], ns = ls, le, ns + 1
        elif lf & STOPLINE:
            flags |= FALLBACK
        kw = ls >= t0 and (lf & KWKEY) != 0
        if ls >= t0 and not kw:  # a failure keyword? (in a clean progress line, only before its marker)
            for p in range(ls, te if parsed and not lf & UNCLEAN else le):
                if at(WT[6], (np.uint64(at(a, p)) << np.uint64(8)) | at(a, p + 1)) and _word(a, w, p, le, WT) >= 0:
                    kw = True
                    break
        if kw and nc < cand.shape[0]:
            cand[nc, 0], cand[nc, 1], nc = ls, le, nc + 1
        elif kw:
            flags |= TAILPY
        ls = le + 1
    return n, ms, flags, nc, ns, seen, rising, lastp


@jit()
def kernel(a, offs, rows, steps, times, pos, cand, stops, fo, KT, KI, LT, WT, tail):  # type: ignore[no-untyped-def]
    """Scan the files ``a[offs[f]:offs[f+1]]`` with the tables of :mod:`~scaling_matrix.parsing.bulk`; see
    :func:`~scaling_matrix.parsing.bulk.scan_batch` for the outputs."""
    w = a[: a.size - a.size % 8].view(np.uint64)
    for f in range(offs.size - 1):
        r0 = rows[f]
        n, ms, flags, nc, ns, seen, rising, lastp = _scan_file(
            a, w, offs[f], offs[f + 1], r0, rows[f + 1] - r0, steps, times, pos, cand[f], stops[f], KT, KI, LT, WT, tail)
        fo[f, 0], fo[f, 1], fo[f, 2], fo[f, 3], fo[f, 4], fo[f, 5] = n, ms, flags, nc, ns, seen
        fo[f, 6], fo[f, 7], fo[f, 8] = rising, np.isnan(times[r0:r0 + n]).sum(), lastp
