"""Byte-level tokenizer of the tiny engine: UTF-8 bytes are ids 0-255, plus BOS/EOS/PAD. Nothing is downloaded."""

from __future__ import annotations

from typing import Any

BOS_ID = 256
EOS_ID = 257
PAD_ID = 258
VOCAB_SIZE = 260  # 256 bytes + BOS, EOS, PAD + one spare id (never produced)
TOKENIZER_FILE = "tiny_byte_tokenizer.json"


def encode(text: str) -> list[int]:
    """Returns the UTF-8 byte values of ``text`` as token ids (no BOS/EOS added).

    Args:
        text: Text to encode.
    """
    return list(text.encode("utf-8"))


def decode(ids: list[int]) -> str:
    """Returns the text for ``ids``, dropping the special ids and replacing invalid UTF-8.

    Args:
        ids: Token ids, possibly including BOS/EOS/PAD.
    """
    return bytes(i for i in ids if 0 <= i < 256).decode("utf-8", errors="replace")


def describe() -> dict[str, Any]:
    """Returns the JSON-serialisable description stored in ``context/nemo_tokenizer/``."""
    return {
        "type": "byte-level",
        "library": "scaling_matrix.tiny.tokenizer",
        "encoding": "utf-8",
        "vocab_size": VOCAB_SIZE,
        "bos_id": BOS_ID,
        "eos_id": EOS_ID,
        "pad_id": PAD_ID,
    }
