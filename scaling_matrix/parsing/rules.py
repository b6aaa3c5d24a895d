"""Declarative line rules: (name, marker, regex, group -> field, converter, unit) and the converters.

A :class:`Rule` says how one kind of log line becomes values: lines are located by a literal
``marker`` (a fast ``bytes.find``), matched by ``regex``, and each named group is turned into a
record attribute by a :class:`Col` (converter + unit). Pipe-separated ``key: value`` tails are
described by a ``pairs`` table (key -> columns). Converters return ``None`` for garbage, never raise.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from datetime import UTC, datetime
from typing import Literal

Value = float | int | str | bool | None
Converter = Callable[[bytes], Value]
Region = Literal["all", "head", "tail"]

_LEAD_FLOAT = re.compile(rb"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_PAREN_FLOAT = re.compile(rb"\(\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)")


def num(raw: bytes) -> float | None:
    """Return ``raw`` as a finite float (``'{:.4}'`` text, exponents allowed), else None."""
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def integer(raw: bytes) -> int | None:
    """Return ``raw`` as an int (``"8"``, ``"8.0"``, ``"1e3"`` when integral), else None."""
    try:
        return int(raw)
    except ValueError:
        value = num(raw)
        return int(value) if value is not None and value.is_integer() else None


def lead_num(raw: bytes) -> float | None:
    """Return the first number in ``raw`` (``"11.66 GiB"`` -> 11.66), else None."""
    m = _LEAD_FLOAT.search(raw)
    return num(m.group()) if m else None


def paren_num(raw: bytes) -> float | None:
    """Return the number in the first parentheses of ``raw`` (``"6924.50(865.56/gpu)"`` -> 865.56)."""
    m = _PAREN_FLOAT.search(raw)
    return num(m.group(1)) if m else None


def lead_int(raw: bytes) -> int | None:
    """Return the first number in ``raw`` as an int when it is integral (``"50.0]"`` -> 50), else None."""
    value = lead_num(raw)
    return int(value) if value is not None and value.is_integer() else None


def scaled(factor: float) -> Callable[[bytes], float | None]:
    """Return a converter of the leading number of a field times ``factor`` (unit change)."""

    def convert(raw: bytes) -> float | None:
        value = lead_num(raw)
        return None if value is None else value * factor

    return convert


def text(raw: bytes) -> str:
    """Return ``raw`` decoded (invalid bytes replaced) and stripped."""
    return raw.decode("utf-8", "replace").strip()


def present(raw: bytes) -> bool:
    """Return True: the group matched (used for optional flag groups)."""
    return True


def hms(raw: bytes) -> float | None:
    """Return ``HH:MM:SS`` (hours may exceed 24) as seconds, else None."""
    parts = raw.strip().split(b":")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        return None
    h, m, s = (int(p) for p in parts)
    return float(h * 3600 + m * 60 + s)


def timestamp(raw: bytes) -> float | None:
    """Return ``YYYY-MM-DD HH:MM:SS[,mmm]`` as POSIX seconds (read as UTC), else None."""
    s = raw.strip().decode("ascii", "replace").replace(",", ".").replace("T", " ").rstrip("Z")
    try:
        return datetime.fromisoformat(s).replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


GIB = 1024.0**3
MIB = 1024.0**2


@dataclass(frozen=True)
class Col:
    """One field of a rule: regex group (or pair key) -> record attribute, converted, with its unit."""

    attr: str
    convert: Converter
    unit: str = ""


@dataclass(frozen=True)
class Rule:
    """How one kind of line becomes values (see the module docstring).

    Attributes:
        name: event the line feeds (``step``, ``val``, ``validation``, ``stopped``, ``memory``,
            ``start``, ``end``, ``total``).
        marker: literal bytes every such line contains (the fast prefilter).
        regex: matched with ``search`` on the line; named groups feed ``cols``.
        cols: group name -> column.
        pairs: for a ``tail`` group of ``| key: value`` (or ``| key value``) items: key -> columns.
        region: where to look: the whole log, or only its first/last 64 KiB.
        exclude: lines containing this are not this rule's (e.g. ``[val]`` for AutoModel steps).
        anchored: the regex starts with ``marker``, so it is matched right at the marker (faster).
        item_sep: separator of the ``pairs`` items (``|``; NeMo 1's tqdm postfix uses ``,``).
        repeat: every marker occurrence is a record of its own, its items end at the next marker
            (Megatron's per-rank memory records are sometimes glued on one line).
    """

    name: str
    marker: bytes
    regex: re.Pattern[bytes]
    cols: Mapping[str, Col] = field(default_factory=dict)
    pairs: Mapping[bytes, tuple[Col, ...]] | None = None
    region: Region = "all"
    exclude: bytes | None = None
    kv_sep: bytes = b":"
    anchored: bool = False
    item_sep: bytes = b"|"
    repeat: bool = False

    @cached_property
    def lookup(self) -> dict[bytes, tuple[Col, ...]]:
        """Return the pairs table keyed also by `` key`` (the raw text after a ``|``)."""
        table = dict(self.pairs or {})
        table.update({b" " + k: v for k, v in (self.pairs or {}).items()})
        return table


def apply_pairs(lookup: Mapping[bytes, tuple[Col, ...]], kv_sep: bytes, tail: bytes,
                out: dict[str, Value], item_sep: bytes = b"|") -> None:
    """Add the converted ``| key: value`` items of ``tail`` known to ``lookup`` to ``out``.

    Note: the hot loop of the parser. The first try takes the key as it stands after the ``|``
    (``lookup`` holds `` key`` too); converters get the value unstripped (``float`` and ``int``
    accept surrounding blanks).
    """
    get = lookup.get
    for item in tail.split(item_sep):
        key, _, raw = item.partition(kv_sep)
        cols = get(key)
        if cols is None:
            key, _, raw = item.strip().partition(kv_sep)
            cols = get(key.strip())
            if cols is None:
                continue
        for col in cols:
            value = col.convert(raw)
            if value is not None:
                out[col.attr] = value


def apply_match(rule: Rule, m: re.Match[bytes], tail: bytes) -> dict[str, Value]:
    """Return the values of one matched line: its groups, then the ``| key: value`` items of ``tail``."""
    out: dict[str, Value] = {}
    for group, col in rule.cols.items():
        raw = m.group(group)
        if raw is not None:
            value = col.convert(raw)
            if value is not None:
                out[col.attr] = value
    if rule.pairs is not None and tail:
        apply_pairs(rule.lookup, rule.kv_sep, tail, out, rule.item_sep)
    return out


def apply_rule(rule: Rule, line: bytes) -> dict[str, Value] | None:
    """Return the values ``rule`` reads from ``line``, or None when the regex does not match.

    With a ``pairs`` table, the items are read from the rest of the line after the match.
    """
    m = rule.regex.search(line)
    return None if m is None else apply_match(rule, m, line[m.end():])
