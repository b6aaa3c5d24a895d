"""In-job restarts as events: restart markers and progress that goes back, merged into :class:`RestartEvent`s.

Evidence (torch ``torch/distributed/elastic/agent/server/api.py``, shared/reference/nemo.md §10):
the elastic agent logs ``[default] Worker group FAILED. 3/3 attempts left; will restart worker group``
before restarting the workers and ``restart_count=N`` in its next ``Rendezvous complete`` message;
NeMo resumes from the ``-last`` checkpoint and re-prints the steps after it. So a restart shows as a
marker, as a step logged again (a *rewind*: a step not above the previous line's), or both.

Rules: markers with no progress line between them are one restart (every node's agent prints
one); the first progress line after a marker closes that restart, and a rewind there is the same
restart; a rewind with no marker before it is a restart of its own. A rewind needs a global step
counter (NeMo ``global_step``, Megatron ``iteration``, AutoModel ``step``): NeMo's iteration alone
resets every epoch.
"""

from __future__ import annotations

from dataclasses import dataclass

from scaling_matrix.parsing.model import ProgressRecord, RestartEvent


@dataclass
class _Marker:
    lineno: int
    text: str


class RestartTracker:
    """Feeds on progress records (in log order) and restart markers; :meth:`finish` returns the events."""

    def __init__(self) -> None:
        self.events: list[RestartEvent] = []
        self._pending: _Marker | None = None
        self._prev: ProgressRecord | None = None
        self._top: int | None = None
        self._latest: dict[int, float | None] = {}  # step -> step time of its latest execution
        self._queue: list[tuple[int, ProgressRecord | str]] = []

    def on_marker(self, lineno: int, text: str) -> None:
        """Note a restart marker line (the first of a run of markers counts)."""
        if self._pending is None:
            self._pending = _Marker(lineno, text.strip()[:200])

    def queue(self, lineno: int, item: ProgressRecord | str) -> None:
        """Queue a progress record or a marker's text (the rules see a chunk one rule at a time; :meth:`flush`
        replays the queue in line order)."""
        self._queue.append((lineno, item))

    def flush(self, global_counter: bool) -> None:
        """Replay the queued records and markers in line order."""
        for lineno, item in sorted(self._queue, key=lambda x: x[0]):
            if isinstance(item, str):
                self.on_marker(lineno, item)
            else:
                self.on_step(item, global_counter)
        self._queue = []

    def on_step(self, rec: ProgressRecord, global_counter: bool) -> None:
        """Note one progress record (in log order)."""
        prev, step = self._prev, rec.step
        rewind = global_counter and prev is not None and step <= prev.step
        if self._pending is not None or rewind:
            redone = [t for k, t in self._latest.items() if k >= step] if rewind else []
            lost = sum(t for t in redone if t is not None and t > 0)
            marker = self._pending
            evidence = (f"{marker.text} (line {marker.lineno})" if marker else "") + \
                (f"{'; ' if marker else ''}step {step} logged again after step {self._top}" if rewind else "")
            self.events.append(RestartEvent(marker.lineno if marker else rec.lineno, self._top, step,
                                            len(redone), lost, evidence))
            self._pending = None
        self._prev, self._latest[step] = rec, rec.step_time_s
        self._top = step if self._top is None else max(self._top, step)

    def finish(self) -> list[RestartEvent]:
        """Return the restart events (a marker with no progress after it is one too)."""
        if self._pending is not None:
            m = self._pending
            self.events.append(RestartEvent(m.lineno, self._top, None, 0, 0.0, f"{m.text} (line {m.lineno})"))
            self._pending = None
        return self.events
