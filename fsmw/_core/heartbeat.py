"""The heartbeat thread: keeps the current claim of a master, or of a simulated worker, alive.

A worker run with the machine's clock and file system heartbeats from a
keeper process instead (``fsmw._worker.keeper``, the same ``hold``/``close``
interface): a thread needs the GIL, which one long C call can hold for longer
than a lease.  This thread stays the implementation that a simulation drives
through ``clock.start_thread`` and ``clock.event``.

Property: a claim held for longer than ``interval`` has its mtime refreshed
every ``interval`` seconds until it is dropped or found broken (fenced), and a
claim held for less costs no call at all.
"""

from __future__ import annotations

from typing import Any, Optional

from .claims import Claim
from .system import Clock


class Heartbeat:
    """One thread per worker that touches the claim held at the moment.

    It wakes every ``interval`` seconds; a claim held for less than that is
    never touched, so short tasks cost no heartbeat call at all.  The thread
    comes from ``clock.start_thread`` and waits on a ``clock.event()``: a
    simulation that runs virtual time replaces both.  A claim
    found broken is logged once (the attempt's result will be discarded).
    """

    def __init__(self, interval: float, clock: Clock, log: Any) -> None:
        self._interval = interval
        self._clock = clock
        self._log = log
        self._claim: Optional[Claim] = None
        self._stop = clock.event()
        self._thread: Any = None

    def hold(self, claim: Optional[Claim]) -> None:
        """Keep ``claim`` alive from now on (None: nothing to keep alive)."""
        self._claim = claim
        if claim is not None and self._thread is None:
            self._thread = self._clock.start_thread(self._run, "fsmw-heartbeat")

    def close(self) -> None:
        self._claim = None
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._stop = self._clock.event()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            claim = self._claim
            if claim is None or claim.fenced:
                continue
            try:
                alive = claim.touch()
            except OSError as exc:  # a flaky mount: keep trying, the lease decides
                self._log.warning("heartbeat on %s failed: %s", claim.path, exc)
                continue
            if not alive and claim.fd >= 0:
                self._log.warning("claim %s is no longer ours (broken by another worker that saw no "
                                  "heartbeat for lease_secs, or the round was closed); our result "
                                  "will be discarded", claim.name)
