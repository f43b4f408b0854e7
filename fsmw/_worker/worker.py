"""The worker: claim a pending task, run it, publish; repeat until told to stop.

One pass (:meth:`Worker.step`) is a short sequence of named steps: check
that it may still work (no stop request, enough allocation left), find its
round, judge running claims if that is due, claim the next pending task,
and run it.  Every ``lease_secs / 4``, busy or idle, it looks at claims that
are stale, overdue or poisoned (see ``recovery``; one ``stat`` per running
claim), so a dead worker's task is redone within about a lease; otherwise an
idle pass is one listing (see ``pending``).  It follows ``CLOSED`` markers to
the next round and exits on ``STOP``, or after ``worker_max_idle_secs``
without work; idle polls back off with full jitter up to
``worker_idle_sleep_secs`` (``_core.pacing.Backoff``).

SIGTERM, SIGINT and SIGUSR1 (a scheduler's warning before the time limit)
only set a flag, or, while ``process_file`` runs, raise
:class:`WorkerInterrupted` inside it: the worker then releases its claim (the
task is immediately free for others), discards the partial output and exits
with :attr:`ExitCode.INTERRUPTED`.  A keeper process (``keeper``; real clock
and file system only) heartbeats whatever the GIL does, records the attempt
of a worker that died, and interrupts a task whose result is no longer
needed: the worker leaves it and goes on (exits on STOP).  A worker that knows its allocation
(``walltime_secs``, or the Slurm job's time left) does not start a task it
cannot expect to finish: it exits with :attr:`ExitCode.OUT_OF_TIME` once the
time left is shorter than a typical task (``process_secs``, or the median
of the task times it has seen).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Callable, Optional, Tuple, Union

from .._core import layout as names
from .._core.claims import Claim
from .._core.shard import Shard
from .._core.errors import FsmwError, StoreError
from .._core.fsinfo import fsync_wanted, is_local
from .._core.journal import Journal
from .._core.lease import LeaseJudge
from .._core.owner import owner_facts
from .._core.pacing import Backoff
from .._core.store import Store
from .._core.system import REAL_CLOCK, Clock, FileSystem, as_clock
from .._options import Options, make_options
from .allocation import Allocation
from .attempt import Attempt, Outcome, scratch_dir, scratch_parent
from .codes import EXITS, ExitCode, StepResult
from .._core.heartbeat import Heartbeat
from .keeper import Keeper
from .shards import RoundWork
from .recovery import Recovery, TaskTimes
from .stopping import StopSwitch, WorkerInterrupted

LISTING_REUSE_SECS = 5.0
LOOK_SECS = 1.0  # how often a worker looks for STOP and its round's CLOSED
LISTING_PACE = 4.0
FIRST_IDLE_SLEEP_SECS = 0.05
_log = logging.getLogger("fsmw.worker")
# How the journal names the outcomes of abandoned attempts (fsmw report knows these).
JOURNALED = {Outcome.ABANDONED.value: "duplicate", Outcome.GIVEN_BACK.value: "interrupted"}


class Worker:
    """Claims tasks from a store and runs :meth:`process_file` on them.

    Args:
        store: the store directory the master writes.
        worker_id: a number that names this worker in logs and claims.
        options: an :class:`fsmw.Options`; keyword options override its fields.
        clock: a :class:`fsmw.Clock` (or a monotonic ``now`` callable, with
            ``sleep``), for tests; fs: the file system (default: the real one).
        **kwargs: tuning options, see :class:`fsmw.Options`.
    """

    def __init__(self, store: Union[str, "os.PathLike[str]"], worker_id: Optional[int] = None,
                 options: Optional[Options] = None, *,
                 clock: Union[Clock, Callable[[], float], None] = None,
                 sleep: Optional[Callable[[float], None]] = None, fs: Optional[FileSystem] = None,
                 **kwargs: Any) -> None:
        self.options = make_options(options, kwargs)
        scratch_parent(self.options)  # a bad tmp_folder is an error now, not at the first task
        self.store = Store(store, fs)
        self.worker_id = worker_id
        self._clock = as_clock(clock, sleep)
        self._stop = StopSwitch()
        self._facts = owner_facts("worker", worker_id, os.environ, self.store.fs)
        self.log = logging.LoggerAdapter(_log, {})
        self.log.process = self._prefix  # type: ignore[method-assign]
        self._log_prefix = f"worker {worker_id}@{self._facts['host']}: "
        self._times = TaskTimes(self.options.process_secs)
        self._recovery = Recovery(self.options, LeaseJudge(self._clock.now), self._times,
                                  self._facts, self.log)
        self._round: Optional[RoundWork] = None
        self._closed_round = 0
        self._next_judging = float("-inf")
        self._next_look = float("-inf")
        self._pace: Optional[float] = None  # LISTING_PACE on shared file systems, else 0
        self.tasks_done = 0
        self._journal = Journal(self._facts, self.store.fs, self._clock)
        self._thread_beat = Heartbeat(self.options.heartbeat_secs, self._clock, self.log)
        self._heartbeat: Union[Heartbeat, Keeper] = self._thread_beat
        # a keeper only with the machine's own time and files; simulations drive the thread
        self._real = clock in (None, REAL_CLOCK) and sleep is None and type(self.store.fs) is FileSystem
        self._attempt: Optional[Attempt] = None  # made by run() (scratch) or the first task
        self._scratch: Optional[Path] = None
        self._allocation = Allocation(self.options.walltime_secs, self._clock)

    _KEEPER = True  # tests turn it off to show what the heartbeat thread alone does
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
            self._attempt = None
            if self._real and self._KEEPER:  # a keeper process for this run, from the first claim
                self._heartbeat = Keeper.for_worker(self.options, self.store.root, self._facts,
                                                    self._stop.handling, self._thread_beat, self.log)
            try:
                if not self.store.check(may_appear=True):
                    self.log.info("waiting for the master to create store %s", self.store.root)
                return self._loop()
            except FsmwError as exc:
                self.log.error("%s", exc)
                return ExitCode.ERROR
            finally:
                self._heartbeat.close()
                self._heartbeat = self._thread_beat
                self._leave_round()
                self._journal.close()
                self._scratch, self._attempt = None, None

    def stop(self) -> None:
        """Ask the worker to stop (what SIGTERM does); safe from any thread."""
        self._stop.set()

    def _loop(self) -> ExitCode:
        idle = Backoff(FIRST_IDLE_SLEEP_SECS, self.options.worker_idle_sleep_secs, self._clock.rng.uniform)
        idle_since = self._clock.now()
        while True:
            result, error = self._step_or_retry()
            if result in EXITS:
                code, why = EXITS[result]
                self.log.info("%s after %d tasks; exiting", why, self.tasks_done)
                return code
            if result is StepResult.WORKED:
                idle_since = self._clock.now()
                idle.reset()
                continue
            self._journal.flush()  # idle: let status and report see what was done
            if self._clock.now() - idle_since >= self.options.worker_max_idle_secs:
                return self._idle_timeout(error)
            self._clock.sleep(idle.draw(), self._stop.event)
            idle.grow()

    def _step_or_retry(self) -> Tuple[StepResult, Optional[OSError]]:
        try:
            return self.step(), None
        except OSError as exc:  # a flaky mount (EIO, ESTALE...): back off and retry
            self.log.warning("store error, will retry: %s", exc)
            return StepResult.IDLE, exc

    def _idle_timeout(self, error: Optional[OSError]) -> ExitCode:
        limit = self.options.worker_max_idle_secs
        if error is not None:
            raise StoreError(f"store {self.store.root} kept failing for {limit:.0f} s: {error}")
        if not self.store.check(writable=False, may_appear=True):
            raise StoreError(f"store {self.store.root} did not appear within {limit:.0f} s; "
                             f"is the master running?")
        self.log.warning("no work for %.0f s; exiting", limit)
        return ExitCode.IDLE_TIMEOUT

    # -- one pass -------------------------------------------------------------
    def step(self) -> StepResult:
        """One pass: claim and run at most one task."""
        if self._stop.is_set():
            return StepResult.INTERRUPTED
        if self._allocation.too_short(self._times.typical_secs):
            return StepResult.OUT_OF_TIME
        told = self._look_around()
        if told is not None:
            return told
        if self._round is None:
            found = self._find_round()
            if found is not StepResult.WORKED:
                return found
        claim = self._next_claim()
        if claim is not None:
            return self._work(*claim)
        if self._work_in.closed:
            return self._follow_closed_round()
        return StepResult.IDLE

    def enter_round(self, number: int) -> None:
        """Work on round ``number`` from now on (the step finds rounds by itself)."""
        if self._round is None or self._round.round.number != number:
            self.log.info("working on %s", names.round_name(number))
        self._leave_round()  # a token belongs to one round
        round_dir = self.store.round(number)
        if self._pace is None:
            self._pace = 0.0 if is_local(round_dir.path, self.store.fs) else LISTING_PACE
        self._round = RoundWork(round_dir, self._facts, self._clock, self._pace,
                                min(LISTING_REUSE_SECS, self.options.lease_secs / 2),
                                self.options.max_attempts, self._stop.event)
        self._round.requeued()  # the REQUEUED it starts with

    @property
    def _work_in(self) -> RoundWork:
        assert self._round is not None
        return self._round

    def _find_round(self) -> StepResult:
        """Enter the newest round after the last closed one (WORKED), or say why not."""
        entries = self.store.root_names()
        if names.STOP in entries:
            return StepResult.STOP
        rounds = sorted(n for n in map(names.round_number, entries) if n is not None)
        if not rounds or rounds[-1] <= self._closed_round:
            return StepResult.IDLE
        self.enter_round(rounds[-1])
        return StepResult.WORKED

    def _look_around(self) -> Optional[StepResult]:
        """At most once a second: on STOP start nothing new; on CLOSED leave the round."""
        now = self._clock.now()
        if now < self._next_look:
            return None
        self._next_look = now + LOOK_SECS
        if self.store.stopped():
            return StepResult.STOP
        if self._round is not None:
            if self._round.round.has(names.CLOSED):
                return self._follow_closed_round()
            self._round.requeued()
        return None

    def _follow_closed_round(self) -> StepResult:
        self._closed_round = self._work_in.round.number
        self._leave_round()
        return self._find_round()

    def _leave_round(self) -> None:
        if self._round is not None:
            self._round.close()
            self._round = None

    def _next_claim(self) -> Optional[Tuple[Shard, Claim]]:
        """A takeover when judging is due and finds one, else the next pending task."""
        work = self._work_in
        work.begin_pass()
        if self._clock.now() >= self._next_judging:
            self._next_judging = self._clock.now() + self._recovery.every_secs()
            taken = work.judge(self._recovery)
            if taken is not None:
                return taken
        return work.next_claim()

    def _work(self, round_dir: Shard, claim: Claim) -> StepResult:
        started, claimed = self._clock.now(), self._clock.time()
        ended = "failed"  # unless run() returns: SystemExit in process_file ends the worker
        try:
            outcome = self._attempts().run(round_dir, claim)
            ended = outcome.value
        except WorkerInterrupted:
            ended = "interrupted"
            return StepResult.INTERRUPTED
        finally:
            self._journal.record(round_dir, claim.task, claim.gen, claim.kind, JOURNALED.get(ended, ended),
                                 claimed, self._clock.time())
        if outcome in (Outcome.ABANDONED, Outcome.GIVEN_BACK):
            self._next_look = float("-inf")  # look for STOP and CLOSED now
            return StepResult.WORKED
        if outcome is not Outcome.FAILED_ATTEMPT:
            self._times.add(self._clock.now() - started)
            self.tasks_done += 1
        return StepResult.WORKED

    def _attempts(self) -> Attempt:
        if self._attempt is None:
            fsync = fsync_wanted(self.options.fsync, self.store.root, self.store.fs)
            stop_file = str(self.store.stop_file) if self.options.on_stop == "interrupt" else None
            self._attempt = Attempt(self.options, self._facts, self.log, self.process_file, self._stop,
                                    self._scratch, self._heartbeat, fsync, self._clock, stop_file,
                                    shared=self._pace != 0.0)
        return self._attempt

    def _prefix(self, msg: str, kwargs: Any) -> Tuple[str, Any]:  # LoggerAdapter.process
        return self._log_prefix + msg, kwargs
