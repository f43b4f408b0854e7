"""The heartbeat: one thread per worker that keeps its current claim alive.

Property: a claim held for longer than ``interval`` has its mtime refreshed
every ``interval`` seconds until it is dropped or found broken (fenced), and a
claim held for less costs no call at all.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Callable, Optional

from .._core.claims import Claim
from .._core.owner import host_name

log = logging.getLogger("fsmw.claims")


class Heartbeat:
    """One thread per worker that touches the claim held at the moment.

    It wakes every ``interval`` seconds; a claim held for less than that is
    never touched, so short tasks cost no heartbeat call at all.
    ``on_fenced(claim)`` is called (from the thread) once a claim is found broken.
    """

    def __init__(self, interval: float, on_fenced: Optional[Callable[[Claim], None]] = None) -> None:
        self._interval = interval
        self._on_fenced = on_fenced
        self._claim: Optional[Claim] = None
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def hold(self, claim: Optional[Claim]) -> None:
        """Keep ``claim`` alive from now on (None: nothing to keep alive)."""
        self._claim = claim
        if claim is not None and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="fsmw-heartbeat", daemon=True)
            self._thread.start()

    def close(self) -> None:
        self._claim = None
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._stop = threading.Event()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            claim = self._claim
            if claim is None or claim.fenced:
                continue
            try:
                alive = claim.touch()
            except OSError as exc:  # a flaky mount: keep trying, the lease decides
                log.warning("%s/%d: heartbeat on %s failed: %s", host_name(), os.getpid(),
                            claim.path, exc)
                continue
            if not alive and claim.fd >= 0 and self._on_fenced:
                self._on_fenced(claim)
