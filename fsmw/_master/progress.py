"""Live progress of the master: a bar on a terminal, a line now and then in a log.

On a terminal (stderr is a TTY) the bar is redrawn in place at most every
0.2 s: ``round 2 [#######.....] 700/1000  3 failed  41.2/s  ETA 7s``.  When
stderr is a file (a Condor or Slurm log) one such line is written at most
every ``progress_secs``, and once at the end of the round.  Both happen by
default (``progress=None``); with ``progress=False`` nothing is written.  It
writes to the stream directly, not through logging, so it works whatever the
application's logging setup.
"""

from __future__ import annotations

import sys
from typing import Any, Callable, Optional, TextIO

BAR_WIDTH = 30
TTY_REDRAW_SECS = 0.2


def format_eta(secs: Optional[float]) -> str:
    if secs is None:
        return "ETA ?"
    secs = int(secs + 0.5)
    if secs >= 3600:
        return f"ETA {secs // 3600}h{secs % 3600 // 60:02d}m"
    if secs >= 60:
        return f"ETA {secs // 60}m{secs % 60:02d}s"
    return f"ETA {secs}s"


class Progress:
    """Reports done/total, rate and ETA of the current round."""

    def __init__(self, enabled: Optional[bool], every_secs: float, clock: Callable[[], float],
                 stream: Optional[TextIO] = None) -> None:
        self._stream = stream or sys.stderr
        tty = bool(getattr(self._stream, "isatty", lambda: False)())
        self._enabled = enabled is not False
        self._tty = tty
        self._every = TTY_REDRAW_SECS if tty else every_secs
        self._clock = clock
        self._start = clock()
        self._last = float("-inf")
        self._round = 0

    def start_round(self, number: int) -> None:
        self._round, self._start, self._last = number, self._clock(), float("-inf")

    def update(self, done: int, failed: int, total: int, final: bool = False) -> None:
        if not self._enabled:
            return
        now = self._clock()
        if not final and now - self._last < self._every:
            return
        self._last = now
        line = self.line(done, failed, total, now - self._start)
        if self._tty:
            self._stream.write("\r" + line + ("\n" if final else ""))
        else:
            self._stream.write(line + "\n")
        self._stream.flush()

    def line(self, done: int, failed: int, total: int, elapsed: float) -> str:
        finished = done + failed
        rate = finished / elapsed if elapsed > 0 else 0.0
        eta = (total - finished) / rate if rate > 0 else None
        filled = BAR_WIDTH * finished // total if total else BAR_WIDTH
        bar = "#" * filled + "." * (BAR_WIDTH - filled)
        return (f"round {self._round} [{bar}] {done}/{total}  {failed} failed  {rate:.1f}/s  "
                f"{format_eta(eta) if finished < total else 'done'}")


class RoundLog:
    """Debug log lines of the round's progress: on change, at most every ``every_secs``."""

    def __init__(self, log: Any, clock: Callable[[], float], every_secs: float = 10.0) -> None:
        self._log = log
        self._clock = clock
        self._every = every_secs
        self._logged = (-1, -1)
        self._logged_at = float("-inf")

    def update(self, number: int, done: int, failed: int, total: int, complete: bool) -> None:
        now = self._clock()
        if (done, failed) == self._logged or (now - self._logged_at < self._every and not complete):
            return
        self._logged, self._logged_at = (done, failed), now
        self._log.debug("round %d: %d/%d done, %d failed", number, done, total, failed)
