"""One master per store: the master holds a claim on the store, judged like a task's.

Protocol: the store's root holds ``master.claim.<g>``, generations of one
claim, exactly like a task's claims in a round (see ``_core.claims``): a
master wins the next generation with ``O_CREAT|O_EXCL``, writes its owner
facts into it, holds its fcntl lock and touches it every ``lease_secs / 5``
from a heartbeat thread.  A master that finds a live generation judges its
holder:

* on the same host, by whether its pid is alive (at once);
* where fcntl locks work, by whether its lock is held (at once);
* otherwise by watching its heartbeat for ``lease_secs`` on its own
  monotonic clock (``_core.lease``), never by comparing clocks.

A live holder makes the new master fail with a StoreError naming the
holder's host and pid.  A dead one is broken like a stale task claim
(``Shard.break_claim``: a record renamed over the claim, which fences
the old holder, then an error record), and the new master takes the store
over.  A master checks on every poll that its claim is still its own, and
gives its claim back when it returns.

Property: of two masters alive at once on a store, at most one passes
:meth:`MasterLease.acquire`, and a master that was taken over (it was
judged dead) notices at its next poll and stops.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

from .._core import layout as names
from .._core.claims import Claim, holder_gone, try_claim
from .._core.errors import StoreError
from .._core.heartbeat import Heartbeat
from .._core.lease import LeaseJudge
from .._core.records import format_record, parse_record
from .._core.shard import LEGACY, Shard
from .._core.store import Store
from .._core.system import Clock

TASK = "master"  # the store root's claims are master.claim.<g>


class TakenOver(StoreError):
    """Another master judged this one dead and took its store over."""


class MasterLease:
    """This master's claim on its store."""

    def __init__(self, store: Store, facts: Mapping[str, object], lease_secs: float, clock: Clock,
                 log: Any) -> None:
        self._root = Shard(str(store.root), 0, LEGACY, store.fs)  # the root, read like a shard
        self._store = store
        self._facts = facts
        self._lease = lease_secs
        self._clock = clock
        self._log = log
        self._claim: Optional[Claim] = None
        self._heartbeat = Heartbeat(lease_secs / 5, clock, log)

    def acquire(self) -> None:
        """Win the store, or raise StoreError naming the live master that holds it."""
        while self._claim is None:
            view = self._root.scan()
            gen = view.live_gen(TASK)
            if gen is not None:
                self._take_over(gen, view.next_gen(TASK))
                continue
            record = format_record(dict(self._facts, started=self._clock.time()))
            self._claim = try_claim(self._root.file(TASK, names.CLAIM, view.next_gen(TASK)), TASK,
                                    view.next_gen(TASK), record, fs=self._root.fs, clock=self._clock)
        self._heartbeat.hold(self._claim)

    def still_mine(self) -> None:
        """Raise StoreError if another master took the store over (it judged us dead)."""
        if self._claim is not None and not self._claim.still_mine():
            raise TakenOver(f"store {self._store.root} was taken over by another master "
                             f"({self._claim.name} was broken): this master stops")

    def release(self) -> None:
        self._heartbeat.close()
        if self._claim is not None:
            self._claim.release()
            self._claim = None

    def _take_over(self, gen: int, next_gen: int) -> None:
        name = names.file_name(TASK, names.CLAIM, gen)
        owner = parse_record(self._root.read(name))
        if self._alive(name, owner):
            raise StoreError(f"store {self._store.root} has a live master: host "
                             f"{owner.get('host', '?')}, pid {owner.get('pid', '?')} ({name}); "
                             f"run one master per store")
        record = format_record(dict(self._facts, started=self._clock.time()))
        won = try_claim(self._root.file(TASK, names.CLAIM, next_gen), TASK, next_gen, record,
                        fs=self._root.fs, clock=self._clock)
        if won is None:
            return  # another master won the next generation: judge it in the next pass
        self._root.break_claim(TASK, gen, self._lease, f"master {self._facts['host']}/{self._facts['pid']}",
                               None, won, note="a new master took the store over")
        self._log.warning("took the store over from a dead master (host %s, pid %s)",
                          owner.get("host", "?"), owner.get("pid", "?"))
        self._claim = won

    def _alive(self, name: str, owner: Mapping[str, str]) -> bool:
        """Whether the holder of ``name`` lives: at once where that can be told, else by watching."""
        fs = self._root.fs
        if owner.get("host") == self._facts["host"] and owner.get("pid", "").isdigit():
            return fs.pid_alive(int(owner["pid"]))
        gone = holder_gone(self._root.join(name), fs)
        if gone is not None:
            return not gone
        return self._heartbeat_moves(name)

    def _heartbeat_moves(self, name: str) -> bool:
        """Watch the claim for ``lease_secs`` on our own clock: does its heartbeat move?"""
        judge, path = LeaseJudge(self._clock.now), self._root.join(name)
        self._log.info("watching the master claim %s for %.0f s", name, self._lease)
        while True:
            try:
                seen = judge.observe(name, self._root.fs.stat(path))
            except FileNotFoundError:
                return False
            if seen.unchanged_secs < seen.seen_secs:
                return True  # it moved while we watched
            if seen.unchanged_secs >= self._lease:
                return False
            self._clock.sleep(self._lease / 10)
