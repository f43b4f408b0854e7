"""Temp files left by dead writers: which ones the master may remove when a round closes.

A temp file (``.tmp.*``) belongs to a writer that is still writing, or to one
that died.  Only the writer's host could tell which, so the master judges by
its own monotonic clock, as leases are judged: a temp it has seen in the
round for at least ``lease_secs`` belongs to a dead writer; a younger one may
be a live (late) writer's, which must not lose it.

Property: the master never removes a temp file it has not seen for a whole
lease (an ``fsmw clean --age`` removes the rest later).
"""

from __future__ import annotations

from typing import Dict, Iterable, List

from .._core.system import Clock


class TempWatch:
    """The temp files of the current round, and when this master first saw each."""

    def __init__(self, clock: Clock, lease_secs: float) -> None:
        self._clock = clock
        self._lease = lease_secs
        self._first: Dict[str, float] = {}

    def seen(self, temps: Iterable[str]) -> None:
        """A poll listed ``temps`` (names of the round's temp files)."""
        temps = list(temps)
        if temps or self._first:
            now = self._clock.now()
            self._first = {name: self._first.get(name, now) for name in temps}

    def dead(self, temps: Iterable[str]) -> List[str]:
        """Of ``temps`` (the closing round's), those seen for a whole lease; forgets the round."""
        oldest = self._clock.now() - self._lease
        dead = [name for name in temps if self._first.get(name, float("inf")) <= oldest]
        self._first = {}
        return dead
