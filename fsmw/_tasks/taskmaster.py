"""The master side of generic tasks: results handed over one task at a time, as they come.

A :class:`TaskMaster` is a :class:`fsmw.Master` that is told, at every
poll, which tasks of the round are newly done or failed (the master's own
per-shard listings, ``_master.counts``; no extra listing), and reads each
such task's output or ``.failed`` record once.  ``fsmw.Executor`` resolves
its futures from this, ``fsmw run`` prints outputs in input order.

Property: :meth:`TaskMaster.task_done` or :meth:`TaskMaster.task_failed` is
called exactly once for each task a subclass :meth:`expects`, at the first
poll that sees its output or failure mark, or at the latest when its round
is over (:meth:`settle_round`).
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Set

from .._core import layout as names
from .._core.records import format_record
from .._core.shard import Shard
from .._core.system import lexists
from .._master.master import Master
from .sealed import PayloadRejected, Scope, load_key, read_regular


class TaskMaster(Master):
    """A master that hands over each task's result as soon as a poll sees it."""

    def __init__(self, store: Any, options: Any = None, **kwargs: Any) -> None:
        super().__init__(store, options, **kwargs)
        self._expected: Set[str] = set()
        self._key: Optional[bytes] = None

    def key(self) -> bytes:
        """The run's key (made in the store, mode 0600, unless ``$FSMW_KEY`` is set)."""
        if self._key is None:
            self._open_store()  # made if need be; a finished run (STOP) is refused here
            self._key = load_key(str(self.store.root), create=True)
        return self._key

    def scope(self, task: str) -> Scope:
        """What ``task``'s payloads in the current round are sealed for."""
        return (self.round, task)

    def expects(self, task: str) -> None:
        """Hand ``task``'s result over when it comes (call before writing its input)."""
        self._expected.add(task)

    # -- what subclasses do with results --------------------------------
    def task_done(self, task: str, output: bytes, where: str) -> None:
        """``task``'s output, read from ``where``."""

    def task_failed(self, task: str, record: bytes, where: str) -> None:
        """``task`` used up its attempts; ``record`` is its ``.failed`` record."""

    # -- the master's hooks -----------------------------------------------
    def _results_seen(self, shard: Shard, done: Set[str], failed: Set[str]) -> None:
        expected = self._expected
        if not expected:
            return
        for task in done & expected:  # set & iterates the smaller side
            self._hand_over(shard, task, names.OUT)
        for task in failed & expected:
            self._hand_over(shard, task, names.FAILED)

    def _hand_over(self, shard: Shard, task: str, kind: str) -> None:
        where = shard.file(task, kind)
        try:
            data = read_regular(where)  # never blocks on a FIFO someone put there
        except PayloadRejected as exc:  # not a regular file: the task failed, with this error
            kind, data = names.FAILED, format_record(dict(error=str(exc)))
        except OSError as exc:  # ESTALE and the like: the next poll lists it again
            self.log.warning("cannot read %s yet: %s", where, exc)
            return
        self._expected.discard(task)
        if kind == names.OUT:
            self.task_done(task, data, where)
        else:
            self.task_failed(task, data, where)

    def settle_round(self) -> Dict[str, str]:
        """Hand over what the polls missed in the round just ended; the tasks with neither an
        output nor a failure mark (the run was stopped), each with why."""
        left: Dict[str, str] = {}
        round_dir = self.store.round(self.round)
        for task in sorted(self._expected):
            shard = round_dir.find(task)
            if shard is not None:
                for kind in (names.OUT, names.FAILED):
                    if task in self._expected and lexists(self.store.fs, shard.file(task, kind)):
                        self._hand_over(shard, task, kind)
            if task in self._expected:
                left[task] = f"no result in {names.round_name(self.round)}"
        self._expected -= set(left)
        return left
