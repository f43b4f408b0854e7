"""Recovering work from stale claims, straggler backups, and poison tasks.

An idle worker (nothing pending in its listing) looks at the claims of
unfinished tasks, one ``stat`` each, and feeds them to its
:class:`~fsmw._lease.LeaseJudge`:

* a claim whose heartbeat has not moved for ``lease_secs`` on the judge's own
  clock (or, with ``take_lockfile_existence_as_lock=False``, whose fcntl lock
  is free after a short grace) is *broken*: the judge wins generation
  after every one its listing shows, with O_EXCL (only the newest live
  generation ``g`` of a task is ever judged), writes an error record for the
  lost attempt, breaks the stale claim (a record renamed over it, fencing its
  holder) and runs the task itself;
* once the round is sealed and at most ``lockfile_timeout_threshold`` of it is
  unfinished, a task running longer than expected with no backup yet gets a
  backup copy: the judge wins the next generation and leaves the original
  claim alone; the first published result wins;
* a task with ``max_attempts`` error records but no failure mark (its last
  writer died in between) is claimed and marked failed.

Property: breaking and backups both go through the O_EXCL create of the
generation after every one the judge saw, and a break leaves a newer live
claim behind, so however many judges act on however stale listings, one lost
attempt is broken (and recorded) once.
"""

from __future__ import annotations

import logging
import os
import statistics
from pathlib import Path
from typing import Callable, List, Optional, Sequence

from .._core import layout as names
from .._core.claims import Claim, break_claim, holder_gone, read_text
from .._core.lease import LeaseJudge
from .._options import Options
from .._core.owner import format_record, parse_record
from .._core.records import count_errors, error_line, write_error, write_failed
from .._core.store import RoundView

ClaimFn = Callable[[str, int], Optional[Claim]]
Found = Claim
LOCK_GRACE_SECS = 1.0


class Recovery:
    """Decides, from one listing, which claimed task an idle worker should take."""

    def __init__(self, options: Options, judge: LeaseJudge, facts: dict,
                 log: logging.LoggerAdapter) -> None:
        self._options = options
        self._judge = judge
        self._facts = facts
        self._log = log
        self.durations: List[float] = []

    def typical_secs(self) -> Optional[float]:
        """How long a task takes: ``process_secs``, or the median seen, or None."""
        if self._options.process_secs is not None:
            return self._options.process_secs
        if self.durations:
            return statistics.median(self.durations[-101:])
        return None

    def expected_secs(self) -> Optional[float]:
        if self._options.process_secs is not None:
            return self._options.process_secs
        if len(self.durations) >= 3:
            return 3.0 * statistics.median(self.durations[-101:])
        return None

    def find(self, view: RoundView, round_dir: Path, claim: ClaimFn) -> Optional[Found]:
        """Return a claim to work on (and the task's earlier failures), or None."""
        self._mark_poisoned(view, round_dir, claim)
        return self._judge_claims(view, round_dir, claim)

    def _mark_poisoned(self, view: RoundView, round_dir: Path, claim: ClaimFn) -> None:
        limit = self._options.max_attempts
        for task, gens in view.errors.items():
            if len(gens) < limit or view.finished(task) or view.live_gen(task) is not None:
                continue
            won = claim(task, view.next_gen(task))
            if won is not None:
                last = round_dir / names.file_name(task, names.ERR, max(gens))
                write_failed(round_dir, task, len(gens), read_text(last) or b"")
                self._log.error("task %s failed %d times; marked failed", task, len(gens))
                won.close()

    def _judge_claims(self, view: RoundView, round_dir: Path, claim: ClaimFn) -> Optional[Found]:
        seen: List[str] = []
        backup_ok = self._backups_allowed(view)
        expected = self.expected_secs()
        result: Optional[Found] = None
        for task, gen in view.running().items():
            # Only the newest live generation counts: an older one is the original
            # of a backup, and judging it could break the task twice.
            name = names.file_name(task, names.CLAIM, gen)
            seen.append(name)
            if result is not None:
                continue
            path = round_dir / name
            try:
                obs = self._judge.observe(name, os.stat(path))
            except FileNotFoundError:
                continue
            if self._stale(path, obs):
                result = self._break(round_dir, task, gen, view.next_gen(task),
                                     obs.unchanged_secs, claim)
            elif backup_ok and expected is not None and len(view.claims[task]) == 1 \
                    and obs.seen_secs >= expected:
                result = self._backup(task, view.next_gen(task), obs.seen_secs, claim)
        self._judge.forget_except(seen)
        return result

    def _stale(self, path: Path, obs) -> bool:
        if obs.unchanged_secs >= self._options.lease_secs:
            return True
        if self._options.take_lockfile_existence_as_lock or obs.seen_secs < LOCK_GRACE_SECS:
            return False
        return holder_gone(path) is True

    def _backups_allowed(self, view: RoundView) -> bool:
        threshold = self._options.lockfile_timeout_threshold
        if not view.sealed or not view.inputs or threshold <= 0:
            return False
        return view.remaining() <= threshold * len(view.inputs)

    def _break(self, round_dir: Path, task: str, gen: int, next_gen: int, idle: float,
               claim: ClaimFn) -> Optional[Found]:
        # Winning the next generation makes the break exclusive: a judge acting on
        # an older listing tries the same name (or an older one) and loses.
        won = claim(task, next_gen)
        if won is None:
            return None
        stale = round_dir / names.file_name(task, names.CLAIM, gen)
        owner = parse_record(read_text(stale) or b"")
        who = ", ".join(f"{k}={owner.get(k, '?')}" for k in ("host", "pid", "worker_id", "job_id"))
        error = f"lease expired: claim {stale.name} not refreshed for {idle:.1f} s ({who})"
        facts = dict(task=task, attempt=gen, **{k: owner.get(k, "?") for k in
                                                 ("host", "pid", "worker_id", "job_id", "started")},
                     broken_by=f"{self._facts['host']}/{self._facts['pid']}", error=error)
        record = write_error(round_dir, task, gen, facts)
        break_claim(stale, format_record(dict(broken_by=facts["broken_by"], error=error)))
        errors = count_errors(round_dir, task, gen)
        self._log.warning("task %s: broke stale claim (%s)", task, error)
        if errors >= self._options.max_attempts:
            write_failed(round_dir, task, errors, read_text(record) or b"")
            self._log.error("task %s lost %d attempts; marked failed", task, errors)
            won.close()
            return None
        won.kind = "break"
        return won

    def _backup(self, task: str, next_gen: int, running: float, claim: ClaimFn) -> Optional[Found]:
        won = claim(task, next_gen)
        if won is None:
            return None
        self._log.info("task %s has run for at least %.1f s (expected %.1f s): starting a "
                       "backup copy", task, running, self.expected_secs() or 0.0)
        won.kind = "backup"
        return won


def last_error(round_dir: Path, task: str, gens: Sequence[int]) -> str:
    """The one-line error of ``task``'s latest error record."""
    if not gens:
        return "unknown error"
    return error_line(read_text(round_dir / names.file_name(task, names.ERR, max(gens))))
