"""Recovering work from stale claims, straggler backups, and poison tasks.

Every ``lease_secs / 4``, busy or idle, a worker looks at the claims of
unfinished tasks in its last listing, one ``stat`` each, and feeds them to its
:class:`~fsmw._core.lease.LeaseJudge`:

* a claim whose heartbeat has not moved for ``lease_secs`` on the judge's own
  clock (or, with ``take_lockfile_existence_as_lock=False``, whose fcntl lock
  is free after a short grace) is *broken*: the judge wins the generation
  after every one its listing shows (only the newest live generation ``g``
  of a task is ever judged), and ``RoundDir.break_claim`` records the lost
  attempt and fences its holder; the judge then runs the task itself.  All
  the stale claims of one listing are broken in the same pass: the judge
  runs the first and gives the others back (removes the generation it won,
  as ``fsmw requeue --stale`` does), so the claims of a process that died
  with several Workers are free again together, for any worker to take;
* once the round is sealed and at most ``lockfile_timeout_threshold`` of it is
  unfinished, or nothing of it is left to start, a task whose one running
  attempt (a first try, a retry or itself a backup) has run longer than
  expected gets a backup copy: the judge wins the next generation and
  leaves the running claim alone; the first published result wins.
  "Expected" is ``process_secs``, else three times the median of this
  worker's tasks, else (it has done none yet) ``lease_secs``, so a hung task
  in a round of any size is backed up at default settings;
* a task with ``max_attempts`` error records but no failure mark (its last
  writer died in between) is marked failed (``RoundDir.mark_poisoned``).

Property: breaking and backups both go through the exclusive claim of the
generation after every one the judge saw, and a break leaves a newer live
claim behind, so however many judges act on however stale listings, one lost
attempt is broken (and recorded) once.
"""

from __future__ import annotations

import statistics
from collections import deque
from typing import Any, Deque, Iterable, List, Mapping, Optional, Tuple

from .._core import layout as names
from .._core.claims import Claim, holder_gone
from .._core.lease import LeaseJudge, Observation
from .._core.shard import Shard, given_back_on_error
from .._core.view import RoundView
from .._options import Options
from .claimer import Claimer

LOCK_GRACE_SECS = 1.0
RECENT = 101  # task times a worker keeps: "typical" is the median of the last ones


class TaskTimes:
    """How long this worker's tasks took: what is typical, and what is overdue."""

    def __init__(self, process_secs: Optional[float]) -> None:
        self._given = process_secs
        self.durations: Deque[float] = deque(maxlen=RECENT)  # bounded: a worker may run millions

    def add(self, secs: float) -> None:
        self.durations.append(secs)

    def typical_secs(self) -> Optional[float]:
        """How long a task takes: ``process_secs``, or the median seen, or None."""
        if self._given is not None:
            return self._given
        return statistics.median(self.durations) if self.durations else None

    def expected_secs(self, unknown: Optional[float] = None) -> Optional[float]:
        """How long a task may run before a backup is due: ``process_secs``, else 3x the
        median of this worker's tasks, else (no task done yet) ``unknown``."""
        if self._given is not None:
            return self._given
        if self.durations:
            return 3.0 * statistics.median(self.durations)
        return unknown


class Recovery:
    """Decides, from one listing, which claimed task a worker should take over."""

    def __init__(self, options: Options, judge: LeaseJudge, times: TaskTimes,
                 facts: Mapping[str, object], log: Any) -> None:
        self._options = options
        self._judge = judge
        self._times = times
        self._broken_by = f"{facts['host']}/{facts['pid']}"
        self._log = log

    def every_secs(self) -> float:
        """How often to judge: lease/4, or the lock grace when free locks tell of dead holders."""
        every = self._options.lease_secs / 4
        if not self._options.take_lockfile_existence_as_lock:
            every = min(every, LOCK_GRACE_SECS)
        return every

    def find(self, shards: Iterable[Tuple[RoundView, Claimer]], backups: bool
             ) -> Optional[Tuple[Shard, Claim]]:
        """Mark poisoned tasks failed and judge the running claims of each shard's listing;
        return a claim to work on (a takeover) and its shard, or None.

        Args:
            backups: whether the round is near its end, so that straggler
                backups may start (see :func:`backups_allowed`).
        """
        seen: List[str] = []
        result: Optional[Tuple[Shard, Claim]] = None
        try:
            for view, claimer in shards:
                for task in claimer.shard.mark_poisoned(view, self._options.max_attempts):
                    self._log.error("task %s failed %d times; marked failed", task, len(view.errors[task]))
                found = self._judge_claims(view, claimer, backups, seen, result is not None)
                if result is None and found is not None:
                    result = (claimer.shard, found)
        except BaseException:
            # A later shard failed (EIO...): the claim already won is given back, not left
            # live and run by nobody until a judge breaks it a lease later.
            with given_back_on_error(result[1] if result is not None else None):
                raise
        self._judge.forget_except(seen)
        return result

    def _judge_claims(self, view: RoundView, claimer: Claimer, backup_ok: bool,
                      seen: List[str], have_one: bool) -> Optional[Claim]:
        """Judge one shard's running claims; a claim this worker won, unless ``have_one``
        (every further stale claim is broken and given back)."""
        expected = self._times.expected_secs(unknown=self._options.lease_secs)
        result: Optional[Claim] = None
        for task, gen in view.running().items():
            # Only the newest live generation counts: an older one is the original
            # of a backup, and judging it could break the task twice.
            path = claimer.shard.file(task, names.CLAIM, gen)
            seen.append(path)
            try:
                obs = self._judge.observe(path, claimer.shard.fs.stat(path))
            except OSError:  # gone, or ESTALE/EIO: judged at a later pass
                continue
            if self._stale(path, obs, claimer):
                # Every stale claim is broken in this pass: the first one this worker
                # runs, the others it gives back, so a dead process's claims are all
                # free again together, not one task duration apart.
                if result is None and not have_one:
                    result = self._break(task, gen, view.next_gen(task), obs.unchanged_secs, claimer)
                else:
                    self._break_and_give_back(task, gen, view.next_gen(task), obs.unchanged_secs,
                                              claimer)
            elif result is None and not have_one and backup_ok and expected is not None \
                    and _live_attempts(view, task) == 1 and obs.seen_secs >= expected:
                result = self._backup(task, view.next_gen(task), obs.seen_secs, expected, claimer)
        return result

    def _stale(self, path: str, obs: Observation, claimer: Claimer) -> bool:
        if obs.unchanged_secs >= self._options.lease_secs:
            return True
        if self._options.take_lockfile_existence_as_lock or obs.seen_secs < LOCK_GRACE_SECS:
            return False
        return holder_gone(path, claimer.shard.fs) is True

    def backups_allowed(self, views: List[RoundView], total: int) -> bool:
        """Near the end of a round: at most ``lockfile_timeout_threshold`` of its ``total``
        tasks unfinished, or nothing left to start, in ``views`` (the caller's listings of
        every shard of the sealed round that is not finished, after the last one it passed)."""
        threshold = self._options.lockfile_timeout_threshold
        if threshold <= 0 or not any(view.inputs for view in views):
            return False
        remaining = sum(view.remaining() for view in views)
        return remaining <= threshold * total or not any(view.pending() for view in views)

    def _break(self, task: str, gen: int, next_gen: int, idle: float,
               claimer: Claimer) -> Optional[Claim]:
        won = claimer.take_over(task, next_gen, "break")
        if won is None:
            return None
        error, exhausted = claimer.shard.break_claim(task, gen, idle, self._broken_by,
                                                     self._options.max_attempts, won)
        self._log.warning("task %s: broke stale claim (%s)", task, error)
        if exhausted:
            self._log.error("task %s lost its last attempt; marked failed", task)
            won.close()
            return None
        return won

    def _break_and_give_back(self, task: str, gen: int, next_gen: int, idle: float,
                             claimer: Claimer) -> None:
        """Break a further stale claim and give the task back; a failure here (EIO...) is
        logged, so the claim this pass already won is kept and run."""
        try:
            won = self._break(task, gen, next_gen, idle, claimer)
            if won is not None:
                won.release()
        except OSError as exc:
            self._log.warning("task %s: could not break its stale claim now (%s); later", task, exc)

    def _backup(self, task: str, next_gen: int, running: float, expected: float,
                claimer: Claimer) -> Optional[Claim]:
        won = claimer.take_over(task, next_gen, "backup")
        if won is not None:
            self._log.info("task %s has run for at least %.1f s (expected %.1f s): starting a "
                           "backup copy", task, running, expected)
        return won


def _live_attempts(view: RoundView, task: str) -> int:
    """How many attempts of ``task`` are running (a retry's earlier attempts ended)."""
    ended = view.errors.get(task, ())
    return sum(1 for gen in view.claims.get(task, ()) if gen not in ended)
