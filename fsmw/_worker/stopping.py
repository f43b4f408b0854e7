"""Stopping a worker: the stop switch that signals, ``Worker.stop()`` and sleeps share.

SIGTERM, SIGINT and SIGUSR1 (a scheduler's warning before the time limit) only
set the switch, except while the user's ``process_file`` runs: then the
handler raises :class:`WorkerInterrupted` inside it, so the worker can release
its claim at once instead of finishing a task the scheduler is about to kill.
Idle sleeps wait on the switch, so a stop request ends them immediately.

SIGUSR2 is the worker's keeper process (see ``keeper``) nudging it: "the
result of your task may no longer be needed".  It sets no flag: while
``process_file`` runs, the handler asks the attempt's own check (three
``stat`` calls, see ``abandon``) and raises :class:`TaskAbandoned` only if the
check agrees, so a late nudge meant for an earlier task does nothing.

Property: the exceptions are raised only inside :meth:`StopSwitch.run_abortable`,
never in fsmw's own publishing or bookkeeping code.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Callable, Iterator, Optional

HANDLED = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)
NUDGE = signal.SIGUSR2
Check = Callable[[], Optional[str]]


class WorkerInterrupted(BaseException):
    """Raised inside ``process_file`` when the worker is told to stop."""


class TaskAbandoned(WorkerInterrupted):
    """Raised inside ``process_file`` when its result is no longer needed (the worker goes on)."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


class StopSwitch:
    """A stop request, settable from a signal handler or any thread."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._abortable = False
        self._check: Optional[Check] = None
        self.handling = False  # whether the signals reach this switch (run() in the main thread)

    @property
    def event(self) -> threading.Event:
        """Set on a stop request: sleeps wait on it (``Clock.sleep(secs, wake=event)``)."""
        return self._event

    def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def run_abortable(self, call: Callable[..., None], *args: object, check: Optional[Check] = None) -> None:
        """Run ``call``; a stop request raises WorkerInterrupted inside it.

        Args:
            check: asked on a nudge (SIGUSR2): why the result is no longer
                needed, or None; a reason raises TaskAbandoned inside ``call``.
        """
        self._abortable, self._check = True, check
        try:
            if self._event.is_set():
                raise WorkerInterrupted()
            call(*args)
        finally:
            self._abortable, self._check = False, None

    def _on_signal(self, signum: int, frame: object) -> None:
        self._event.set()
        if self._abortable:
            self._abortable = False
            raise WorkerInterrupted()

    def _on_nudge(self, signum: int, frame: object) -> None:
        check = self._check
        if not self._abortable or check is None:
            return  # between tasks, or in fsmw's own code: nothing to interrupt
        try:
            why = check()
        except OSError:
            return  # the store cannot tell now; the keeper nudges again
        if why is not None and self._abortable:
            self._abortable = False
            raise TaskAbandoned(why)

    @contextmanager
    def signals_handled(self) -> Iterator[None]:
        """Route the stop signals and the nudge to this switch (main thread only) while inside."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        old = {s: signal.signal(s, self._on_signal) for s in HANDLED}
        old[NUDGE] = signal.signal(NUDGE, self._on_nudge)
        self.handling = True
        try:
            yield
        finally:
            self.handling = False
            for sig, handler in old.items():
                signal.signal(sig, handler)
