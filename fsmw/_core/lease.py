"""Judging leases without trusting any clock but the judge's own monotonic one.

A claim's heartbeat changes its file's (ino, mtime, ctime).  The judge never
compares an mtime with ``time.time()``: it remembers when, on its *own
monotonic clock*, it first saw each claim and each distinct (ino, mtime,
ctime), and calls a claim stale once that key has not changed for
``lease_secs``.  So a host whose clock is minutes off, or a node whose client
stamps skewed mtimes, changes nothing: only *whether* the mtime moves counts.

Property: a claim whose holder heartbeats at least every ``lease_secs`` (as
seen through the judge's attribute cache) is never judged stale, whatever the
clocks say; a claim whose heartbeat stopped is judged stale at most
``lease_secs`` plus one poll interval after the judge first saw its last value.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterable, NamedTuple, Tuple

Key = Tuple[int, int, int]


def heartbeat_key(st: Any) -> Key:
    """What a heartbeat changes in a claim's ``stat``: (ino, mtime, ctime) in ns.

    A new inode (a broken claim), a touched mtime and a changed ctime all
    count as movement; nothing is compared with any clock.
    """
    return (st.st_ino, st.st_mtime_ns, st.st_ctime_ns)


class Observation(NamedTuple):
    """What the judge knows of one claim file."""

    unchanged_secs: float  # since the judge first saw the current heartbeat
    seen_secs: float  # since the judge first saw this claim (a lower bound of its age)


class LeaseJudge:
    """Remembers claim heartbeats as seen on the judge's monotonic clock."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._beats: Dict[str, Tuple[Key, float]] = {}
        self._first: Dict[str, Tuple[int, float]] = {}

    def observe(self, name: str, st: Any) -> Observation:
        now = self._clock()
        key = heartbeat_key(st)
        beat = self._beats.get(name)
        if beat is None or beat[0] != key:
            beat = (key, now)
            self._beats[name] = beat
        first = self._first.get(name)
        if first is None or first[0] != st.st_ino:
            first = (st.st_ino, now)
            self._first[name] = first
        return Observation(now - beat[1], now - first[1])

    def forget_except(self, names: Iterable[str]) -> None:
        """Drop what the judge remembers of claims no longer listed."""
        keep = set(names)
        for table in (self._beats, self._first):
            for name in [n for n in table if n not in keep]:
                del table[name]

    def __len__(self) -> int:
        return len(self._beats)
