"""The parser never crashes on garbage: truncated lines, interleaved ranks, binary noise, random unicode."""

from __future__ import annotations

import io

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scaling_matrix.parsing.engine import LogBuilder
from scaling_matrix.parsing.progress import parse_lines, parse_stream
from scaling_matrix.parsing.summary import log_summary
from tests.parsing.conftest import FIX

REAL_LINES = [line for name in ("nemo_quirks.log", "megatron.log", "automodel_current.log", "automodel_v01.log",
                                "training.jsonl", "oom.log", "nccl_timeout.log")
              for line in (FIX / name).read_text().splitlines()]
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def mangled(draw: st.DrawFn) -> str:
    """A real line, truncated and/or glued to another one (interleaved ranks)."""
    line = draw(st.sampled_from(REAL_LINES))
    cut = draw(st.integers(0, len(line)))
    other = draw(st.sampled_from(REAL_LINES))
    return draw(st.sampled_from([line[:cut], line[:cut] + other, other + line[cut:], line]))


LINES = st.lists(st.one_of(mangled(), st.text(), st.binary().map(lambda b: b.decode("latin-1")),
                           st.sampled_from(["Training epoch 0, iteration 1/", "| global_step: nan |",
                                            "Training epoch 0, iteration 1/2 | global_step: 1e400",
                                            "iteration 3/ 2 | consumed samples: inf |", "step 1 | epoch x",
                                            '{"step": -1, "grad_norm": "x"}', "Total time : 99:99:99"])),
                 max_size=40)


def _check(parsed) -> None:
    s = log_summary(parsed)
    assert s["iterations"] == len(s["step_times_s"])
    assert all(r.step >= 0 for r in parsed.steps)
    assert [r.step for r in parsed.steps] == sorted({r.step for r in parsed.steps})
    assert isinstance(s["completed"], bool) and isinstance(s["problems"], list)


@SETTINGS
@given(LINES)
def test_lines_never_crash(lines: list[str]) -> None:
    for fmt in ("auto", "nemo", "automodel", "megatron"):
        _check(parse_lines(lines, fmt))


@SETTINGS
@given(st.binary(max_size=4000), st.integers(1, 64))
def test_binary_streams_in_any_chunking(data: bytes, size: int) -> None:
    builder = LogBuilder()
    for i in range(0, len(data), size):
        builder.feed(data[i:i + size])
    _check(builder.finish())
    _check(parse_stream(io.BytesIO(data)))


@SETTINGS
@given(st.lists(mangled(), max_size=30))
def test_chunking_does_not_change_the_result(lines: list[str]) -> None:
    text = ("\n".join(lines) + "\n").encode()
    whole = parse_stream(io.BytesIO(text))
    builder = LogBuilder()
    cuts = [i + 1 for i, b in enumerate(text) if b == 10]  # line-aligned chunks of one line each
    start = 0
    for cut in cuts:
        builder.feed(text[start:cut])
        start = cut
    assert builder.finish().steps == whole.steps
