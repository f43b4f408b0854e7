"""Backoff and pacing: how long a master or worker waits before it looks again.

Three rules, used by master polls, idle workers and listings alike:

* :class:`Backoff`: a pause that doubles, up to a cap, while nothing
  changes, and is drawn with jitter so that many pollers spread out (full
  jitter for idle workers: uniform in [0, pause]; the master draws in
  [pause/2, pause]).  Progress resets it, to its first value or to a pause
  the caller derives from the work left.
* :class:`Pace`: the next look waits at least ``factor`` times what the last
  one cost.  On a network file system a listing of a big directory costs the
  server work per entry, so a multiple of its cost bounds the share of the
  server one poller takes (the factor is 0 or 1 on a local file system,
  where a listing costs only the poller's own time).
* :class:`Rate`: the master polls again at about half the time its round
  should still take at the rate seen so far (quickly at first and near the
  end, rarely in between).

Property: a poller that sees nothing new looks again after at most ``cap``
seconds (plus the pace floor), and never more often than the pace allows.
"""

from __future__ import annotations

from typing import Callable, Optional


class Backoff:
    """A jittered pause that doubles from ``first`` up to ``cap``."""

    def __init__(self, first: float, cap: float, uniform: Callable[[float, float], float],
                 low: float = 0.0) -> None:
        self.first, self.cap, self._low = first, cap, low
        self._uniform = uniform
        self.pause = first

    def reset(self, pause: Optional[float] = None) -> None:
        """Progress: start again from ``first`` (or from ``pause``, within first..cap)."""
        self.pause = self.first if pause is None else min(max(pause, self.first), self.cap)

    def grow(self) -> None:
        """Nothing changed: double the pause, up to the cap."""
        self.pause = min(self.pause * 2, self.cap)

    def draw(self) -> float:
        """The pause to sleep now, with jitter (``low`` is the fraction always slept)."""
        return self._uniform(self._low * self.pause, self.pause)


class Pace:
    """Keeps the next look at least ``factor`` times the last one's cost after it."""

    def __init__(self, factor: float, now: Callable[[], float]) -> None:
        self.factor = factor
        self._now = now
        self.cost = 0.0
        self.last = float("-inf")

    def measure(self, started: float) -> None:
        """A look that began at ``started`` has just ended."""
        self.last = self._now()
        self.cost = self.last - started

    def next_at(self) -> float:
        return self.last + self.factor * self.cost

    def due(self) -> bool:
        return self._now() >= self.next_at()

    def wait_secs(self) -> float:
        return max(0.0, self.next_at() - self._now())

    def floor(self) -> float:
        """The least pause after the last look."""
        return self.factor * self.cost


class Rate:
    """A round's finishing rate since the first poll, and the time left at that rate (master polls)."""

    def __init__(self, began: float) -> None:
        self._began = began
        self._at_start: Optional[int] = None
        self._seen = -1

    def time_left(self, finished: int, total: int, now: float) -> Optional[float]:
        """Seconds left at the rate so far (None: nothing new since the last poll)."""
        if self._at_start is None:
            self._at_start = finished
        if finished == self._seen:
            return None
        self._seen = finished
        rate = (finished - self._at_start) / (now - self._began) if now > self._began else 0.0
        return 0.0 if rate <= 0 else (total - finished) / rate
