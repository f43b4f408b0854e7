"""The fake clock of the tests: time stands still until the test (or a sleep) moves it."""

from __future__ import annotations

import random
import threading
from typing import Callable, List, Optional

import fsmw


class FakeClock(fsmw.Clock):
    """An :class:`fsmw.Clock` whose monotonic "now" is :attr:`secs`, a number the test advances.

    ``sleep`` never sleeps: it advances :attr:`secs` by the seconds asked for,
    records them in :attr:`slept`, then calls ``on_sleep`` (if given) with
    them, so something can happen "meanwhile" (a heartbeat moves, a worker
    takes a step).  Wall time (``time()``), threads and helper processes stay
    the machine's.

    Args:
        secs: the monotonic time at the start.
        on_sleep: called with the seconds of each sleep, after the clock moved.
        rng: random draws; default a ``random.Random`` seeded with 0.
    """

    def __init__(self, secs: float = 0.0, on_sleep: Optional[Callable[[float], object]] = None,
                 rng: Optional[random.Random] = None) -> None:
        super().__init__(now=self.read, sleep=self.advance, rng=rng or random.Random(0))
        self.secs = secs
        self.on_sleep = on_sleep
        self.slept: List[float] = []

    def read(self) -> float:
        return self.secs

    def advance(self, secs: float) -> None:
        """Move the clock ``secs`` seconds on."""
        self.secs += secs

    def sleep(self, secs: float, wake: Optional[threading.Event] = None) -> None:
        self.slept.append(secs)
        self.advance(max(secs, 0.0))
        if self.on_sleep is not None:
            self.on_sleep(secs)
