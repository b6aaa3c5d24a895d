"""Find secret-looking values anywhere in user input, by shape and by key name; redact them from text.

Pure. A secret is reported by where it is (the key path) and what it looks like, never by its value.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from scaling_matrix.safe_text import shorten

#: (what it looks like, pattern). Token formats as their issuers document them.
SECRET_SHAPES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("a Hugging Face token (hf_...)", re.compile(r"\bhf_[A-Za-z0-9]{20,}")),
    ("a GitHub token (ghp_/gho_/ghs_/ghu_/ghr_...)", re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}")),
    ("a GitHub token (github_pat_...)", re.compile(r"\bgithub_pat_[A-Za-z0-9_]{20,}")),
    ("an AWS access key id (AKIA/ASIA...)", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("an API secret key (sk-...)", re.compile(r"\bsk-[A-Za-z0-9_-]{16,}")),
    ("a Slack token (xox...-)", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
    ("a password inside a URL (user:password@host)", re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*:[^/\s@]+@")),
    ("a private key (-----BEGIN ... PRIVATE KEY-----)", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")),
)

#: Key names whose values are secrets whatever they look like.
SECRET_KEY_NAME = re.compile(r"TOKEN|PASSWORD|PASSWD|SECRET|API_?KEY|CREDENTIAL|PRIVATE_?KEY", re.I)

SECRET_FIX = ("remove it from the file; export it in the environment (profile container.env_passthrough) "
              "or store it in a Prefect Secret block")


def secret_kind(text: str) -> str | None:
    """Return what ``text`` looks like when it contains a secret (e.g. 'a GitHub token'), else None."""
    for kind, pattern in SECRET_SHAPES:
        if pattern.search(text):
            return kind
    return None


def redact(text: str) -> str:
    """Return ``text`` with every secret-looking substring replaced by ``<redacted>``."""
    for _, pattern in SECRET_SHAPES:
        text = pattern.sub("<redacted>", text)
    return text


def shown(text: str, limit: int = 40) -> str:
    """Return ``text`` safe to print as a name: escaped, cut to ``limit``, or a placeholder if secret-looking."""
    return "<secret-looking text>" if secret_kind(text) else shorten(text, limit)


def _path(parent: str, key: object) -> str:
    if isinstance(key, int):
        return f"{parent}[{key}]"
    return f"{parent}.{shown(str(key))}" if parent else shown(str(key))


def find_secrets(data: Any, parent: str = "") -> Iterator[tuple[str, str]]:
    """Yield ``(key path, what it looks like)`` for every secret-looking key or value in ``data``."""
    if isinstance(data, dict):
        for key, value in data.items():
            path = _path(parent, key)
            if isinstance(key, str) and secret_kind(key):
                yield path, f"key looks like {secret_kind(key)}"
            elif isinstance(key, str) and SECRET_KEY_NAME.search(key) and isinstance(value, str) and value:
                yield path, "is named like a secret and holds a value"
            else:
                yield from find_secrets(value, path)
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from find_secrets(value, _path(parent, i))
    elif isinstance(data, str) and (kind := secret_kind(data)):
        yield parent or "value", f"value looks like {kind}"
