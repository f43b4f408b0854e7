"""The worker: claim a pending task, run it, publish; repeat until told to stop.

One pass (:meth:`Worker.step`) makes one listing of the current round
directory (reusing it for a few seconds while it still yields pending tasks),
walks the sorted pending tasks from a random point until a claim wins (one
``open`` per try; a lost try jumps elsewhere, a run of them means a new
listing), and runs that task.  Every ``lease_secs / 4``, busy or idle, it
looks at claims that are stale, overdue or poisoned (see ``_recovery``; one
``stat`` per running claim), so a dead worker's task is redone within about a
lease; otherwise an idle pass is one listing.  It follows ``CLOSED`` markers to the next round
and exits on ``STOP``, or after ``worker_max_idle_secs`` without work; idle
polls back off with full jitter up to ``worker_idle_sleep_secs``.

SIGTERM, SIGINT and SIGUSR1 (a scheduler's warning before the time limit)
only set a flag, or, while ``process_file`` runs, raise
:class:`WorkerInterrupted` inside it: the worker then releases its claim (the
task is immediately free for others), discards the partial output and exits
with :attr:`ExitCode.INTERRUPTED`.  A worker that knows its allocation
(``walltime_secs``, or the Slurm job's time left) does not start a task it
cannot expect to finish: it exits with :attr:`ExitCode.OUT_OF_TIME` once the
time left is shorter than a typical task (``process_secs``, or the median
of the task times it has seen).
"""

from __future__ import annotations

import enum
import logging
import os
import random
import time
from pathlib import Path
from typing import Callable, Optional, Union

from .._core import layout as names
from .attempt import Attempt, Outcome, scratch_dir
from .._core.claims import Claim
from .heartbeat import Heartbeat
from .._core.token import Token
from .._core.errors import FsmwError, StoreError
from .._core.fsinfo import fsync_wanted, is_local
from .._core.journal import Journal
from .._core.lease import LeaseJudge
from .._options import Options
from .._core.owner import Allocation, owner_facts
from .recovery import LOCK_GRACE_SECS, Recovery
from .stopping import StopSwitch, WorkerInterrupted
from .pending import PendingTasks
from .._core.store import Store

LISTING_REUSE_SECS = 5.0
LISTING_PACE = 4.0
FIRST_IDLE_SLEEP_SECS = 0.05
_log = logging.getLogger("fsmw.worker")


class ExitCode(enum.IntEnum):
    """What :meth:`Worker.run` returns; suitable for ``sys.exit``."""

    STOPPED = 0  # the master wrote the stop file
    ERROR = 1  # the store is unusable, or fsmw itself failed
    IDLE_TIMEOUT = 3  # no work for worker_max_idle_secs
    INTERRUPTED = 4  # SIGTERM, SIGINT or SIGUSR1
    OUT_OF_TIME = 5  # the allocation's time left is shorter than a task


class StepResult(enum.Enum):
    WORKED = "worked"
    IDLE = "idle"
    STOP = "stop"
    INTERRUPTED = "interrupted"
    OUT_OF_TIME = "out of time"


class Worker:
    """Claims tasks from a store and runs :meth:`process_file` on them.

    Args:
        store: the store directory the master writes.
        worker_id: a number that names this worker in logs and claims.
        clock: monotonic clock (tests inject one); sleep: the matching sleep.
        **options: tuning options, see :class:`fsmw.Options`.
    """

    def __init__(self, store: Union[str, "os.PathLike[str]"], worker_id: Optional[int] = None, *,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Optional[Callable[[float], None]] = None, **options: object) -> None:
        self.options = Options(**options)  # type: ignore[arg-type]
        self.store = Store(store)
        self.worker_id = worker_id
        self._clock = clock
        self._stop = StopSwitch()
        self._scratch: Optional[Path] = None  # private local scratch while run() uses use_tmp
        self._sleep = sleep or self._stop.sleep
        self._facts = owner_facts("worker", worker_id)
        self.log = logging.LoggerAdapter(_log, {})
        self.log.process = self._prefix  # type: ignore[method-assign]
        self._judge = LeaseJudge(clock)
        self._recovery = Recovery(self.options, self._judge, self._facts, self.log)
        self._round: Optional[int] = None
        self._round_dir = self.store.root
        self._closed_round = 0
        self._next_judging = float("-inf")
        self._pending = PendingTasks(list, clock, 0.0, 0.0, self.options.max_attempts)  # no round yet
        self._pace: Optional[float] = None  # LISTING_PACE on shared file systems, else 0
        self._paced = False
        self.tasks_done = 0
        self._journal = Journal(self._facts)
        self._heartbeat = Heartbeat(self.options.heartbeat_secs, self._fenced)
        self._token: Optional[Token] = None  # this worker's claim token in the current round
        self._attempt: Optional[Attempt] = None  # made once run() has set up scratch
        self._allocation = Allocation(self.options.walltime_secs, clock)

    # -- the subclass contract --------------------------------------------
    def process_file(self, input_path: Path, output_path: Path) -> None:
        """Process one task: read ``input_path``, write ``output_path``.

        ``output_path`` is a temp name; fsmw publishes it when this returns.
        Raise to report failure: the task is retried up to ``max_attempts``.
        """
        raise NotImplementedError(f"{type(self).__name__} must override Worker.process_file")

    # -- running ------------------------------------------------------------
    def run(self) -> ExitCode:
        """Work until the stop file, the idle limit or a signal; return why."""
        with self._stop.signals_handled(), scratch_dir(self.options) as self._scratch:
            try:
                self._check_store()
                return self._loop()
            except FsmwError as exc:
                self.log.error("%s", exc)
                return ExitCode.ERROR
            finally:
                self._heartbeat.close()
                self._close_token()
                self._journal.close()
                self._scratch, self._attempt = None, None

    def _loop(self) -> ExitCode:
        idle_since = self._clock()
        pause = FIRST_IDLE_SLEEP_SECS
        error: Optional[OSError] = None
        while True:
            try:
                result, error = self.step(), None
            except OSError as exc:  # a flaky mount (EIO, ESTALE...): back off and retry
                self.log.warning("store error, will retry: %s", exc)
                result, error = StepResult.IDLE, exc
            if result is StepResult.STOP:
                self.log.info("stop file found after %d tasks; exiting", self.tasks_done)
                return ExitCode.STOPPED
            if result is StepResult.INTERRUPTED:
                self.log.info("interrupted after %d tasks; exiting", self.tasks_done)
                return ExitCode.INTERRUPTED
            if result is StepResult.OUT_OF_TIME:
                self.log.info("%.0f s of allocation left, less than a task takes; exiting after "
                              "%d tasks", self._allocation.time_left() or 0.0, self.tasks_done)
                return ExitCode.OUT_OF_TIME
            if result is StepResult.WORKED:
                idle_since, pause = self._clock(), FIRST_IDLE_SLEEP_SECS
                continue
            if self._paced:  # wait for the next listing, without backing off further
                self._paced = False
                self._sleep(max(0.0, self._pending.next_listing() - self._clock()))
                continue
            self._journal.flush()  # idle: let status and report see what was done
            if self._clock() - idle_since >= self.options.worker_max_idle_secs:
                if error is not None:
                    raise StoreError(f"store {self.store.root} kept failing for "
                                     f"{self.options.worker_max_idle_secs:.0f} s: {error}")
                if not self.store.root.is_dir():
                    raise StoreError(f"store {self.store.root} did not appear within "
                                     f"{self.options.worker_max_idle_secs:.0f} s; is the master running?")
                self.log.warning("no work for %.0f s; exiting", self.options.worker_max_idle_secs)
                return ExitCode.IDLE_TIMEOUT
            self._sleep(random.uniform(0, pause))
            pause = min(pause * 2, self.options.worker_idle_sleep_secs)

    def _check_store(self) -> None:
        root = self.store.root
        if root.exists():
            self.store.check()
        elif not root.parent.is_dir():
            raise StoreError(f"store {root} cannot appear: its parent directory {root.parent} "
                             f"does not exist")
        else:
            self.log.info("waiting for the master to create store %s", root)

    def stop(self) -> None:
        """Ask the worker to stop (what SIGTERM does); safe from any thread."""
        self._stop.set()

    def step(self) -> StepResult:
        """One pass: claim and run at most one task."""
        if self._stop.is_set():
            return StepResult.INTERRUPTED
        if self._allocation.too_short(self._recovery.typical_secs):
            return StepResult.OUT_OF_TIME
        if self._round is None:
            found = self._find_round()
            if found is not StepResult.WORKED:
                return found
        number = self._round
        assert number is not None
        pending = self._pending
        fresh = pending.refresh_if_stale()
        # Busy and idle workers alike look at running claims every lease_secs / 4
        # (one stat each), so a dead worker's task is redone within about a lease
        # and an idle worker's poll is otherwise a single listing.
        found_claim = self._recover(number) if self._clock() >= self._next_judging else None
        if found_claim is None:
            found_claim = pending.claim(self._claim_fn(number))
        if found_claim is None and not fresh and pending.may_list():
            pending.relist()
            fresh = True
            found_claim = pending.claim(self._claim_fn(number))
        if found_claim is None:
            if pending.view.closed:
                self._closed_round, self._round = number, None
                return self._find_round()
            if not fresh:
                self._paced = True  # not idle: the next listing is just not due yet
            return StepResult.IDLE
        return self._work(number, found_claim)

    def _recover(self, number: int):
        every = self.options.lease_secs / 4
        if not self.options.take_lockfile_existence_as_lock:
            every = min(every, LOCK_GRACE_SECS)  # free locks tell of dead holders quickly
        self._next_judging = self._clock() + every
        return self._recovery.find(self._pending.view, self._round_dir, self._claim_fn(number, recheck=True))

    # -- rounds ---------------------------------------------------------------
    def _find_round(self) -> StepResult:
        entries = self.store.root_names()
        if names.STOP in entries:
            return StepResult.STOP
        rounds = sorted(n for n in map(names.round_number, entries) if n is not None)
        if not rounds or rounds[-1] <= self._closed_round:
            return StepResult.IDLE
        self._enter_round(rounds[-1])
        return StepResult.WORKED

    def _enter_round(self, number: int) -> None:
        if number != self._round:
            self.log.info("working on %s", names.round_name(number))
        self._close_token()  # a token belongs to one round
        self._round = number
        self._round_dir = self.store.round_dir(number)
        if self._pace is None:
            self._pace = 0.0 if is_local(self._round_dir) else LISTING_PACE
        self._pending = PendingTasks(lambda: self.store.listing(number), self._clock, self._pace,
                                     min(LISTING_REUSE_SECS, self.options.lease_secs / 2),
                                     self.options.max_attempts)

    # -- claiming -----------------------------------------------------------
    def _claim_fn(self, number: int, recheck: bool = False) -> Callable[[str, int], Optional[Claim]]:
        def claim(task: str, gen: int) -> Optional[Claim]:
            return self._claim(number, task, gen, recheck)
        return claim

    def _claim(self, number: int, task: str, gen: int, recheck: bool = True) -> Optional[Claim]:
        """Win generation ``gen`` of ``task``.

        A pending task from a listing needs no re-check after a win: every
        attempt leaves its claim file, so a generation our listing did not show
        cannot have been used since (see ``_claims``).  Takeovers and backups
        (``recheck``) look once more whether the task finished meanwhile.
        """
        path = f"{self._round_dir}/{task}.{names.CLAIM}.{gen}"
        won = self._token_in(number).claim(path, task, gen)
        if won is not None and recheck and any(os.path.lexists(self.store.task_file(number, task, kind))
                                               for kind in (names.OUT, names.FAILED)):
            won.close()
            return None
        return won

    def _token_in(self, number: int) -> Token:
        if self._token is None:
            self._token = Token(self.store.round_dir(number), self._facts)
        return self._token

    def _close_token(self) -> None:
        if self._token is not None:
            self._token.close()
            self._token = None

    def _work(self, number: int, claim: Claim) -> StepResult:
        if self._attempt is None:
            fsync = fsync_wanted(self.options.fsync, self.store.root)
            self._attempt = Attempt(self.options, self._facts, self.log, self._call_user,
                                    self._scratch, self._heartbeat, fsync)
        started, claimed = self._clock(), time.time()
        round_dir = self._round_dir
        try:
            outcome = self._attempt.run(round_dir, claim)
        except WorkerInterrupted:
            self._journal.record(round_dir, claim.task, claim.gen, claim.kind, "interrupted",
                                 claimed, time.time())
            return StepResult.INTERRUPTED
        self._journal.record(round_dir, claim.task, claim.gen, claim.kind, outcome.value,
                             claimed, time.time())
        if outcome is not Outcome.FAILED_ATTEMPT:
            self._recovery.durations.append(self._clock() - started)
            self.tasks_done += 1
        return StepResult.WORKED

    def _call_user(self, input_path: Path, output_path: Path) -> None:
        self._stop.run_abortable(self.process_file, input_path, output_path)

    def _fenced(self, claim: Claim) -> None:
        self.log.warning("claim %s was broken by another worker (no heartbeat seen for "
                         "lease_secs); our result will be discarded", claim.name)

    # -- plumbing -------------------------------------------------------------
    def _prefix(self, msg: str, kwargs):  # LoggerAdapter.process
        return f"worker {self.worker_id}@{self._facts['host']}: {msg}", kwargs
