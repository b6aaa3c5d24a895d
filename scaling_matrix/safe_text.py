"""Text that is safe to print: control, escape and bidi characters made visible, never interpreted.

Pure. Used for everything user-supplied that reaches a terminal, a log, the UI or an error message.
"""

from __future__ import annotations

import re

#: C0/C1 controls (ESC, NUL, newline, ...), DEL, and the invisible formatting characters that reorder
#: or hide text on screen (bidi embeddings/overrides/isolates, zero-width marks, BOM, line separators).
UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")


def has_unsafe_chars(text: str) -> bool:
    """Return True when ``text`` holds a control, escape or bidi/invisible formatting character."""
    return UNSAFE.search(text) is not None


_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    if match.group() in _NAMED:
        return _NAMED[match.group()]
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """Return ``text`` with every unsafe character written as a visible escape (``\\n``, ``\\x1b``, ``\\u202e``)."""
    return UNSAFE.sub(_escape, text)


def shorten(text: str, limit: int = 60) -> str:
    """Return ``printable(text)`` cut to ``limit`` characters (with an ellipsis when cut)."""
    safe = printable(text)
    return safe if len(safe) <= limit else safe[: limit - 1] + "…"
