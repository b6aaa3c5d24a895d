"""Failure signatures judged by evidence over the whole log: class, severity, context, and the verdict.

Every line holding one of :data:`KEYWORDS` (a cheap prefilter) is matched against :data:`SIGNATURES`
(priority order: a line gets the first class it matches). Each hit becomes a :class:`Signature` with

* its **log level**: the first level token of the line (``[NeMo W``, ``WARNING``, ``UserWarning``,
  ``[W808`` ... warning; ``ERROR``, ``[E808``, ``[NeMo E`` ... error; ``INFO`` ... info), or
  ``unknown`` (a bare ``RuntimeError: ...`` line, a scheduler message);
* its **context**: an exception line followed (within two lines) by a warning's source line
  ``warnings.warn(`` is the text of a warning, not an exception that ended anything (sklearn
  prints whole tracebacks inside ``UserWarning: Scoring failed``);
* its **position**: the byte offset of its line, compared with the last progress line's.

:func:`judge` decides (shared/reference/nemo.md §9, issue 12): a warning is never a failure; a
signature followed by further progress is an event (the process went on); and a fatal signature
wins only when the run did not finish. The failure is then the highest-priority class among the
fatal signatures after the last progress line (a specific class beats the generic ``crash``), and
its evidence line is the first line of that class there.

Facts: NeMo warns "There were no checkpoints found ... Training from scratch." when
``resume_ignore_no_checkpoint=True`` and raises ``NotFoundError(... Cannot resume.)`` otherwise
(NeMo ``nemo/lightning/resume.py``); SLURM prints ``*** JOB n ON node CANCELLED AT ts ***`` for a
plain ``scancel`` and ``... DUE TO TIME LIMIT ***`` at the limit (shared/reference/slurm.md).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

#: (class, pattern) in priority order; the class names are ``scaling_matrix.outcome.FailureClass`` values.
SIGNATURES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("oom", re.compile(r"torch\.(?:cuda\.)?OutOfMemoryError|CUDA out of memory|CUDA error: out of memory|"
                       r"DefaultCPUAllocator: can't allocate memory|Out of memory|oom-kill")),
    ("nccl_timeout", re.compile(r"Watchdog caught collective operation timeout|NCCL.*timed? ?out|"
                                r"ProcessGroupGloo.*Timed out")),
    ("time_limit", re.compile(r"CANCELLED AT \S+ DUE TO TIME LIMIT")),
    ("preempted", re.compile(r"DUE TO PREEMPTION")),
    ("node_fail", re.compile(r"DUE TO NODE FAILURE")),
    ("cancelled", re.compile(r"\*\*\* (?:JOB|STEP) \S+ ON \S+ CANCELLED AT \S+(?: by \S+)? \*\*\*")),
    ("launch_failed", re.compile(r"execve\(\): .*No such file or directory|command not found|"
                                 r"FATAL:\s+could not open image|srun: error: (?:Unable to create step|"
                                 r".*Socket timed out)|step creation temporarily disabled")),
    ("hf_auth", re.compile(r"GatedRepoError|Cannot access gated repo|access a gated repo|\b40[13] Client Error")),
    ("no_checkpoint", re.compile(r"Cannot resume\.|Last checkpoint is unfinished and cannot be used to resume")),
    ("config_error", re.compile(r"^(?:\S+: )?Unexpected error: ")),
    ("crash", re.compile(r"terminate called after throwing|Segmentation fault|Fatal Python error|ChildFailedError|"
                         r"(?:^|[\]:])\s*[A-Za-z_][\w.]*(?:Error|Exception): ")),
)
PRIORITY = {name: k for k, (name, _) in enumerate(SIGNATURES)}
SCHEDULER_KILLS = frozenset({"time_limit", "preempted", "node_fail", "cancelled"})

#: Literal substrings that every signature's line contains (cheap candidate filter, also the bulk kernel's).
KEYWORDS: tuple[bytes, ...] = (
    b"OutOfMemoryError", b"out of memory", b"Out of memory", b"can't allocate memory", b"oom-kill",
    b"Watchdog", b"NCCL", b"imed out", b"DUE TO", b"CANCELLED AT", b"execve", b"not found", b"FATAL",
    b"creation temporarily", b"Unexpected error", b"Client Error", b"gated repo", b"GatedRepo",
    b"Cannot resume", b"cannot be used to resume", b"terminate called", b"Segmentation fault",
    b"Error", b"Exception",
)

_LEVEL = re.compile(r"\[NeMo (?P<nemo>[IWE]) |(?P<warning>\bWARN(?:ING)?\b|\w+Warning\b|\[W\d{3,4} |\[W\] )|"
                    r"(?P<error>\bERROR\b|\[E\d{3,4} )|(?P<info>\bINFO\b)")
_NEMO_LEVEL = {"I": "info", "W": "warning", "E": "error"}
_WARN_SOURCE = re.compile(r"(?:^|\s|:)(?:warnings\.)?_?warn\w*\(")
CONTEXT_LINES = 2


@dataclass(frozen=True)
class Signature:
    """One signature line: class, log level, position and whether it reads as a warning's text."""

    klass: str
    level: str  # warning | error | info | unknown
    pos: int  # byte offset of its line (compared with the last progress line's)
    lineno: int  # 1-based line number (0 when unknown: the bulk scanner)
    line: str
    in_warning: bool = False

    @property
    def fatal(self) -> bool:
        """True when the line can have ended the process: not a warning or info message, not a warning's text."""
        return self.level in ("error", "unknown") and not self.in_warning


@dataclass(frozen=True)
class Verdict:
    """The judgement of one log: the failure (None: none) and every signature with what it was taken for."""

    failure: Signature | None
    signatures: tuple[Signature, ...]


def classify_line(line: str) -> str | None:
    """Return the class of the first signature ``line`` matches, else None."""
    for klass, pattern in SIGNATURES:
        if pattern.search(line):
            return klass
    return None


def log_level(line: str) -> str:
    """Return the log level of ``line``: its first level token, else ``unknown``."""
    m = _LEVEL.search(line)
    if m is None:
        return "unknown"
    if m.group("nemo"):
        return _NEMO_LEVEL[m.group("nemo")]
    return next(k for k in ("warning", "error", "info") if m.group(k))


def warning_source(following: Iterable[str]) -> bool:
    """True when one of ``following`` is a warning's source line (``warnings.warn(``): the text before it is
    the warning's message."""
    return any(_WARN_SOURCE.search(nxt) for nxt in following)


def signature(line: str, following: Iterable[str], pos: int, lineno: int = 0) -> Signature | None:
    """Return the signature of ``line`` (``following``: up to :data:`CONTEXT_LINES` next lines), or None."""
    klass = classify_line(line)
    if klass is None:
        return None
    level = "unknown" if klass in SCHEDULER_KILLS else log_level(line)
    in_warning = warning_source(following)
    return Signature(klass, level, pos, lineno, line.strip()[:300], in_warning)


def keyword_line_starts(data: bytes) -> list[int]:
    """Return the start offsets (sorted, each once) of the lines of ``data`` holding any :data:`KEYWORDS`."""
    starts: set[int] = set()
    for kw in KEYWORDS:
        i = data.find(kw)
        while i >= 0:
            starts.add(data.rfind(b"\n", 0, i) + 1)
            e = data.find(b"\n", i)
            if e < 0:
                break
            i = data.find(kw, e)
    return sorted(starts)


def _line_at(data: bytes, s: int) -> tuple[str, int]:
    """Return the decoded line starting at ``s`` (without ``\\r``) and the offset after its newline."""
    e = data.find(b"\n", s)
    end = len(data) if e < 0 else e
    return data[s:end].decode("utf-8", "replace").rstrip("\r"), end + 1


def following_lines(data: bytes, after: int, count: int = CONTEXT_LINES) -> list[str]:
    """Return up to ``count`` lines of ``data`` starting at offset ``after``."""
    out = []
    while len(out) < count and after < len(data):
        line, after = _line_at(data, after)
        out.append(line)
    return out


def scan(data: bytes, base: int = 0, lineno: int = 0) -> Iterator[tuple[Signature, int]]:
    """Yield (signature, lines of context still missing) for every signature line of ``data``.

    ``base``/``lineno``: byte offset and line number of ``data``'s first line (``lineno`` 0: unknown).
    Context lines come from ``data`` only; the count says how many more a caller may add.
    """
    prev, line_no = 0, lineno
    for s in keyword_line_starts(data):
        if lineno:
            line_no += data.count(b"\n", prev, s)
            prev = s
        line, after = _line_at(data, s)
        following = following_lines(data, after)
        sig = signature(line, following, base + s, line_no)
        if sig is not None:
            yield sig, CONTEXT_LINES - len(following) if after <= len(data) else 0


def judge(signatures: Iterable[Signature], last_progress_pos: int | None, finished: bool) -> Verdict:
    """Return the verdict: no failure when ``finished``; else the best fatal signature after the last progress."""
    sigs = tuple(signatures)
    if finished:
        return Verdict(None, sigs)
    after = [s for s in sigs if s.fatal and (last_progress_pos is None or s.pos > last_progress_pos)]
    if not after:
        return Verdict(None, sigs)
    best = min(PRIORITY[s.klass] for s in after)
    return Verdict(min((s for s in after if PRIORITY[s.klass] == best), key=lambda s: s.pos), sigs)


def judge_text(text: str) -> Verdict:
    """Return the verdict of a text with no progress information (every fatal signature counts)."""
    return judge((sig for sig, _ in scan(text.encode("utf-8", "replace"), 0, 1)), None, False)


class Collector:
    """Collects the signatures of a log fed chunk by chunk (context lines may come from the next chunk)."""

    def __init__(self) -> None:
        self.signatures: list[Signature] = []
        self._missing: list[tuple[int, int]] = []  # (index, context lines still to read)

    def feed(self, chunk: bytes, offset: int, lineno: int) -> None:
        """Add the signatures of ``chunk`` (``offset``/``lineno``: of its first byte / line)."""
        for index, missing in self._missing:
            sig = self.signatures[index]
            if not sig.in_warning and warning_source(following_lines(chunk, 0, missing)):
                self.signatures[index] = Signature(sig.klass, sig.level, sig.pos, sig.lineno, sig.line, True)
        self._missing = []
        for sig, missing in scan(chunk, offset, lineno):
            self.signatures.append(sig)
            if missing:
                self._missing.append((len(self.signatures) - 1, missing))
