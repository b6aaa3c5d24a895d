"""nvidia-smi CSV logs read through ``parse-log``: the peak of ``memory.used`` (what nvidia-smi shows).

A log whose first line is a CSV header naming ``memory.used`` (with or without ``[MiB]``, any column
order, with or without an ``index`` column) is parsed with :mod:`scaling_matrix.parsing.memory`;
the peak over every GPU goes to ``memory_peaks["smi_used"]`` in bytes (values are MiB).
"""

from __future__ import annotations

from scaling_matrix.parsing.memory import MemoryLog, parse_memory_rows, summarize
from scaling_matrix.parsing.model import ParsedLog
from scaling_matrix.parsing.rules import MIB


class SmiCsv:
    """Accumulates the lines of an nvidia-smi CSV, one chunk at a time."""

    def __init__(self) -> None:
        self.log = MemoryLog()
        self._rest = ""

    @staticmethod
    def sniff(chunk: bytes) -> bool:
        """True when the first line of ``chunk`` is an nvidia-smi CSV header with ``memory.used``."""
        head = chunk.split(b"\n", 1)[0].strip().lower()
        return head.startswith(b"timestamp") and b"," in head and b"memory.used" in head

    def feed(self, chunk: bytes) -> None:
        """Parse the complete lines of ``chunk`` (the header row sets the columns)."""
        text = self._rest + chunk.decode("utf-8", "replace")
        lines = text.split("\n")
        self._rest = lines.pop()
        self._header = getattr(self, "_header", None) or lines[0]
        rows = lines if lines and lines[0] == self._header else [self._header, *lines]
        parse_memory_rows(rows, self.log)

    def finish(self, out: ParsedLog) -> None:
        """Store the peak in ``out`` and name the format."""
        if self._rest.strip():
            self.feed(b"\n")
        out.format = "nvidia_smi_csv"
        summaries = summarize(self.log)
        if summaries:
            out.memory_peaks["smi_used"] = max(s.peak_mib for s in summaries.values()) * MIB
        out.problems.extend(self.log.problems[:20])
