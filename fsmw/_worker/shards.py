"""A worker's way through the shards of its round: which one it works in, and which are finished.

Protocol (see ``_core.rounddir`` for the layout):
  * the worker lists the round's own directory (its shards, ``SEALED``,
    ``CLOSED``) when it enters the round and again, paced, when it has no
    shard left to look at, until the round is sealed (then no shard can
    appear; ``CLOSED`` is looked at once a second, see ``worker``);
  * it works in one shard at a time (``pending``: one listing of that shard,
    reused while it yields tasks), starting with the lowest one it has not
    seen finished; when a shard has nothing left to start it moves on to
    the next such shard, and after the last one it wraps around to the
    lowest, so tasks given back or failed in a shard it passed are found
    again; a pass that comes back to where it started claims nothing;
  * a shard is *finished* once the round is sealed and each of the shard's
    inputs has an output or a failure mark; it is never listed again, unless
    ``REQUEUED`` changes (``fsmw requeue``), which makes every shard
    unfinished again;
  * judging (``recovery``) looks at the unfinished shards up to the
    furthest one the worker has entered, one listing each: shards after it
    hold no claims of workers that are not also past it;
  * the worker has one claim token per shard it claimed in, and closes the
    tokens of other shards when it moves (no task of its runs then).

Property: a worker holds one shard's listing and a set of finished shard
numbers, never a name per task of the round, and finds a pending task with
one listing of the round and one of a shard.
"""

from __future__ import annotations

import logging
import threading
from typing import Dict, Iterable, Iterator, List, Mapping, Optional, Set, Tuple

from .._core import layout as names
from .._core.claims import Claim
from .._core.pacing import Pace
from .._core.records import parse_record
from .._core.rounddir import RoundDir
from .._core.shard import Shard
from .._core.system import Clock
from .._core.view import RoundView
from .claimer import Claimer
from .pending import PendingTasks
from .recovery import Recovery

log = logging.getLogger("fsmw.worker")


class RoundWork:
    """One worker's state in one round."""

    def __init__(self, round_dir: RoundDir, facts: Mapping[str, object], clock: Clock, pace: float,
                 reuse_secs: float, max_attempts: int, wake: Optional[threading.Event] = None) -> None:
        self.round = round_dir
        self._facts, self._clock, self._wake = facts, clock, wake
        self._pace = Pace(pace, clock.now)
        self._reuse_secs, self._max_attempts = reuse_secs, max_attempts
        self.sealed = self.closed = False
        self.total = 0  # tasks in the round, from SEALED (0 until it is read)
        self._known: List[int] = []
        self._finished: Set[int] = set()
        self._claimers: Dict[int, Claimer] = {}
        self._current: Optional[PendingTasks] = None
        self._furthest = -1  # the highest shard this worker has entered (wrapping goes back)
        self._requeued: Optional[Tuple[int, int]] = None
        self._round_listed = False  # during this pass

    # -- the round's own directory ------------------------------------------------
    def list_round(self) -> None:
        entries = self.round.listing()
        self._known = self.round.shards(entries)
        self.closed = names.CLOSED in entries
        if names.SEALED in entries and not self.sealed:
            self.sealed = True
            count = parse_record(self.round.read(names.SEALED)).get("tasks", "")
            self.total = int(count) if count.isdigit() else 0

    def requeued(self) -> bool:
        """One ``lstat`` of ``REQUEUED``: True if it changed since the last look (every shard
        is then unfinished again)."""
        try:
            st = self.round.fs.lstat(self.round.join(names.REQUEUED))
            seen: Optional[Tuple[int, int]] = (st.st_ino, st.st_mtime_ns)
        except FileNotFoundError:
            seen = None
        changed = seen != self._requeued
        self._requeued = seen
        if changed:
            self._finished.clear()
        return changed

    # -- claiming -----------------------------------------------------------------
    def claimer(self, shard: Shard) -> Claimer:
        found = self._claimers.get(shard.index)
        if found is None:
            found = self._claimers[shard.index] = Claimer(shard, self._facts, self._clock)
        return found

    def begin_pass(self) -> None:
        """Start a worker's pass: enter the first unfinished shard, or list the current one again."""
        self._round_listed = False
        if self._current is None:
            self.list_round()
            self._round_listed = True
            first = self._next_shard(None)
            if first is None:
                return
            self._enter(first)
        assert self._current is not None
        self._current.begin_pass()

    def next_claim(self) -> Optional[Tuple[Shard, Claim]]:
        """Win a pending task: in the current shard, else in the next unfinished one."""
        tried: Set[int] = set()
        while self._current is not None:
            pending = self._current
            won = pending.next_claim(self.claimer(pending.shard))
            if won is not None:
                return pending.shard, won
            tried.add(pending.shard.index)
            self._note_finished(pending)
            following = self._next_shard(pending.shard.index)
            if following is None or following in tried:
                return None
            self._enter(following)
        return None

    def _next_shard(self, after: Optional[int]) -> Optional[int]:
        """The unfinished shard after ``after`` (listing the round again, once a pass, when
        there is none), else the lowest unfinished one; None if every shard is finished."""
        ahead = self._open_after(after)
        if ahead is None and not self._round_listed and not self.sealed and self._pace.due():
            self.list_round()
            self._round_listed = True
            ahead = self._open_after(after)
        return ahead if ahead is not None else self._open_after(None)

    def _open_after(self, after: Optional[int]) -> Optional[int]:
        for index in self._known:
            if (after is None or index > after) and index not in self._finished:
                return index
        return None

    def _enter(self, index: int) -> None:
        for other in [i for i in self._claimers if i != index]:
            self._claimers.pop(other).close()  # no task of ours runs between passes
        self._furthest = max(self._furthest, index)
        self._current = PendingTasks(self.round.shard(index), self._clock, self._pace, self._reuse_secs,
                                     self._max_attempts, self._wake)

    def _note_finished(self, pending: PendingTasks) -> None:
        if pending.listed_once and self._is_finished(pending.shard.index, pending.view):
            self._finished.add(pending.shard.index)

    def _is_finished(self, index: int, view: RoundView) -> bool:
        """The round is sealed (every input is in place) and every input of the shard finished.

        Not "a later shard exists": a resumed master stages an open shard's missing
        inputs while it makes the next shards, and a master on a shared file system
        writes inputs on threads, so a shard may still be filling then.
        """
        return self.sealed and bool(view.inputs) and view.remaining() == 0

    # -- judging ------------------------------------------------------------------
    def to_judge(self) -> Iterator[Tuple[Shard, RoundView]]:
        """Each unfinished shard up to the furthest one this worker has entered (it may have
        wrapped back since), with a fresh listing of it.

        A shard this listing shows finished is noted, and not listed again:
        a worker leaves a shard while others still run its last tasks, so
        most shards are seen finished here, once.
        """
        if self._current is None:
            return
        current, upto = self._current.shard.index, self._furthest
        for index in self._known:
            if index > upto or index in self._finished:
                continue
            if index == current:
                yield self._current.shard, self._current.view
                continue
            shard = self.round.shard(index)
            try:
                view = shard.scan()
            except OSError as exc:  # EIO, ESTALE...: this shard is judged at a later pass
                log.debug("cannot list %s to judge its claims: %s", shard.path, exc)
                continue
            if self._is_finished(index, view):
                self._finished.add(index)
                continue
            yield shard, view

    def judge(self, recovery: Recovery) -> Optional[Tuple[Shard, Claim]]:
        """One judging pass (``recovery``) over the unfinished shards up to the current one."""
        backups = False
        shards: Iterable[Tuple[Shard, RoundView]] = self.to_judge()  # one listing at a time
        if self.is_last():  # near the end: few shards are unfinished, and backups may start
            shards = list(shards)
            backups = recovery.backups_allowed([view for _, view in shards], self.total)
        return recovery.find(((view, self.claimer(shard)) for shard, view in shards), backups)

    def is_last(self) -> bool:
        """Has this worker reached the last shard of a sealed round (nothing after it to start)?"""
        return self.sealed and bool(self._known) and self._furthest == self._known[-1]

    def close(self) -> None:
        """Leave the round: the tokens' names go, their claims stay."""
        for claimer in self._claimers.values():
            claimer.close()
        self._claimers = {}
        self._current = None
