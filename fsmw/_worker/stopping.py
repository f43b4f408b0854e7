"""Stopping a worker: the stop switch that signals, ``Worker.stop()`` and sleeps share.

SIGTERM, SIGINT and SIGUSR1 (a scheduler's warning before the time limit) only
set the switch, except while the user's ``process_file`` runs: then the
handler raises :class:`WorkerInterrupted` inside it, so the worker can release
its claim at once instead of finishing a task the scheduler is about to kill.
Idle sleeps wait on the switch, so a stop request ends them immediately.

Property: the exception is raised only inside :meth:`StopSwitch.run_abortable`,
never in fsmw's own publishing or bookkeeping code.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Callable, Iterator

HANDLED = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)


class WorkerInterrupted(BaseException):
    """Raised inside ``process_file`` when the worker is told to stop."""


class StopSwitch:
    """A stop request, settable from a signal handler or any thread."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._abortable = False

    @property
    def event(self) -> threading.Event:
        """Set on a stop request: sleeps wait on it (``Clock.sleep(secs, wake=event)``)."""
        return self._event

    def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def run_abortable(self, call: Callable[..., None], *args: object) -> None:
        """Run ``call``; a stop request raises WorkerInterrupted inside it."""
        self._abortable = True
        try:
            if self._event.is_set():
                raise WorkerInterrupted()
            call(*args)
        finally:
            self._abortable = False

    def _on_signal(self, signum: int, frame: object) -> None:
        self._event.set()
        if self._abortable:
            self._abortable = False
            raise WorkerInterrupted()

    @contextmanager
    def signals_handled(self) -> Iterator[None]:
        """Route the stop signals to this switch (main thread only) while inside."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        old = {s: signal.signal(s, self._on_signal) for s in HANDLED}
        try:
            yield
        finally:
            for sig, handler in old.items():
                signal.signal(sig, handler)
