"""The master: write a round of inputs, wait for every result, repeat, stop.

Protocol per round k:
  1. ``mkdir round-k`` (never reused: a late file of round k can never satisfy
     round k+1), then ``create_input_files()`` writes each input two-stage
     (temp, fsync where wanted (see ``_core.fsinfo``), rename), then ``SEALED``
     with a digest of the inputs (:meth:`Master.begin_round`).  A restarted
     master resumes the newest round not ``CLOSED`` instead (``resume``);
  2. poll with one listing of ``round-k`` and of each shard not yet finished
     per pass (:meth:`Master.step`, ``counts``), again at about
     half the time the round should still take at its rate so far, backing
     off up to ``master_idle_sleep_secs`` while nothing arrives, and pausing
     at least what the last poll took (four times that on a shared file
     system; see ``_core.pacing``); a task is done when ``<task>.out`` exists
     and failed when ``<task>.failed`` does (the master marks it itself if
     ``max_attempts`` error records exist and no claim is live);
  3. (on a local file system, ``syncfs`` the store: see ``_core.fsinfo``)
     ``process_output_files(outputs)``; if it returns True, make round k+1,
     then write ``CLOSED`` in round k (workers follow it to k+1); otherwise
     write ``STOP`` in the store, then ``CLOSED``.  Temp files left in round k
     by crashed writers (seen by the master for at least ``lease_secs``) are
     removed when it closes.

One master per store (``ownership``).  Property: :meth:`Master.run` returns
once every task of every round is done or failed, and reports each failure.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Callable, List, Mapping, Optional, Set, Tuple, Union

from .._core import layout as names
from .._core.errors import StoreError, TaskNameError
from .._core.fsinfo import fsync_wanted, is_local, sync_file_system
from .._core.owner import owner_facts
from .._core.paths import as_path
from .._core.pacing import Backoff, Pace, Rate
from .._core.store import Store
from .._core.system import Clock, FileSystem, as_clock
from .._options import Options, make_options
from .ownership import MasterLease, TakenOver
from .counts import RoundCounts, Watch
from .progress import Progress, RoundLog
from .resume import create_inputs, resume_inputs
from .sinks import Fresh, Sink
from .summary import Outputs, Summary
from .temps import TempWatch

_log = logging.getLogger("fsmw.master")
FIRST_POLL_SECS = 0.02
POLL_PACE = 4.0


class Stopped(StoreError):
    """The stop file appeared while the master was waiting for a round."""


class Master:
    """Writes inputs into a store and collects the workers' outputs.

    Args:
        store: the store directory (created if its parent exists).
        options: an :class:`fsmw.Options`; keyword options override its fields.
        clock: a :class:`fsmw.Clock` (or a monotonic ``now`` callable, with
            ``sleep``), for tests; fs: the file system (default: the real one).
        **kwargs: tuning options, see :class:`fsmw.Options`.
    """

    def __init__(self, store: Union[str, "os.PathLike[str]"], options: Optional[Options] = None, *,
                 clock: Union[Clock, Callable[[], float], None] = None,
                 sleep: Optional[Callable[[float], None]] = None, fs: Optional[FileSystem] = None,
                 **kwargs: Any) -> None:
        self.options = make_options(options, kwargs)
        self.store = Store(store, fs)
        self._clock = as_clock(clock, sleep)
        self._facts = owner_facts("master", None, os.environ, self.store.fs)
        self.log = logging.LoggerAdapter(_log, {})
        self.log.process = self._prefix  # type: ignore[method-assign]
        self._log_prefix = f"master@{self._facts['host']}: "
        self.round = 0
        self._round_dir = self.store.round(0)
        self._tasks: Set[str] = set()
        self._counts = self._new_counts()
        self._summary = Summary()
        self._rounds_run: List[int] = []
        self._temps = TempWatch(self._clock, self.options.lease_secs)
        self._fsync = self.options.fsync is not False  # resolved by run() once the store exists
        self._parallel = False
        self._bar = Progress(self.options.progress, self.options.progress_secs, self._clock.now)
        self._ownership = MasterLease(self.store, self._facts, self.options.lease_secs, self._clock, self.log)
        self._round_log = RoundLog(self.log, self._clock.now)
        self._sink: Sink = Fresh(self._round_dir, self.options.shard_size, self._fsync)

    # -- the subclass contract --------------------------------------------
    def create_input_files(self) -> None:
        """Create this round's inputs with :meth:`create_input_file`."""
        raise NotImplementedError(f"{type(self).__name__} must override Master.create_input_files")

    def process_output_files(self, outputs: Mapping[str, Path]) -> bool:
        """Look at the round's outputs ``{task name: path}``; True starts another round."""
        return False

    def create_input_file(self, name: str, data: Union[bytes, str]) -> Path:
        """Write one task's input into the current round (temp, [fsync], rename).

        Raises:
            TaskNameError (a ValueError): the name is invalid or already used.
        """
        names.check_task_name(name, self.store.name_max())
        if name in self._tasks:
            raise TaskNameError(f"task name {name!r} is used twice in {names.round_name(self.round)}")
        if isinstance(data, str):
            data = data.encode("utf-8")
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"input data for task {name!r} must be bytes or str, not {type(data).__name__}")
        final = self._sink.put(name, data)  # written, or compared when resuming
        self._tasks.add(name)
        return as_path(final)

    # -- running ------------------------------------------------------------
    def run(self) -> Summary:
        """Run rounds until :meth:`process_output_files` returns False."""
        started = self._clock.now()
        self._open_store()
        self._ownership.acquire()
        try:
            return self._run_rounds(started)
        finally:
            self._ownership.release()

    def _run_rounds(self, started: float) -> Summary:
        earlier = self.store.rounds()
        left_open = [n for n in earlier if not self.store.round(n).has(names.CLOSED)]
        resume = bool(left_open) and not self.options.abandon_open_round  # see resume
        self._open_round(left_open.pop() if resume else max(earlier, default=0) + 1, resume)
        why = "" if resume else "abandoned; "
        for number in left_open:  # send workers still there on to the current round
            self.log.warning("round %d was left open by an earlier master; closing it (%snext: %s)",
                             number, why, names.round_name(self.round))
            self._close_round(number, f"{why}next: {names.round_name(self.round)}")
        while self._finish_round():
            previous, counts = self.round, self._counts
            self.begin_round(previous + 1)
            self._close_round(previous, "next: " + names.round_name(self.round), counts)
        # Count again: late results of earlier rounds are discarded as they arrive.
        self._summary.duplicates = sum(self.store.duplicates(n) for n in self._rounds_run)
        self._summary.wall_secs = self._clock.now() - started
        self.log.info("%s", self._summary)
        return self._summary

    def _open_store(self) -> None:
        self.store.check(create=True)
        self._fsync = fsync_wanted(self.options.fsync, self.store.root, self.store.fs)
        # inputs are written on threads where each costs server round trips (see parallel)
        self._parallel = type(self.store.fs) is FileSystem and not is_local(self.store.root, self.store.fs)
        if self.store.stopped():
            raise StoreError(f"store {self.store.root} holds a finished run ({names.STOP} exists); "
                             f"use a new store, or remove it to start over")

    def _finish_round(self) -> bool:
        """Wait for the round, hand its outputs over; True if another round follows.

        The last round (or one stopped from outside) is closed here, after STOP.
        """
        try:
            self._wait_for_round()
        except Stopped as exc:
            self.log.warning("%s; returning without the round's remaining results", exc)
            self._summary.stopped = True
            self._tally()
            self._close_round(self.round, "stopped from outside", self._counts)
            return False
        if not self._fsync:
            sync_file_system(self._round_dir.path, self.store.fs)  # see _core.fsinfo: once per round
        outputs = Outputs(self._round_dir, self._counts.done)
        again = self.process_output_files(outputs)
        if not again:
            self.store.write_stop(self._facts)
            self._close_round(self.round, "next: STOP", self._counts)
        return bool(again)

    def begin_round(self, number: Optional[int] = None) -> int:
        """Make round ``number`` (default: after the newest one), create its inputs, seal it;
        return its number.  Raises StoreError if its directory exists (another master?)."""
        if number is None:
            number = max(self.store.rounds(), default=0) + 1
        return self._open_round(number, resume=False)

    def _open_round(self, number: int, resume: bool) -> int:
        """Create round ``number``, or resume it (``resume``: RoundMismatch if the tasks differ)."""
        self.round, self._tasks = number, set()
        self._round_dir = self.store.round(number)
        self._counts = self._new_counts()
        self._bar.start_round(number)
        self._rounds_run.append(number)
        size = self.options.shard_size
        if resume:
            self._tasks = resume_inputs(self._round_dir, self._yield_inputs, size, self._fsync, self.log)
        else:
            self._tasks = create_inputs(self._round_dir, self._yield_inputs, size, self._fsync, self.log,
                                        parallel=self._parallel)
        return number

    _results_seen: Optional[Watch] = None  # told at each poll what a shard has done and failed

    def _new_counts(self) -> RoundCounts:
        return RoundCounts(self._round_dir, self.options.max_attempts, self.log, self._results_seen)

    def _yield_inputs(self, sink: Sink) -> Set[str]:
        """Call ``create_input_files()`` with each input going to ``sink``; the task names."""
        self._sink, self._tasks = sink, set()
        self.create_input_files()
        return self._tasks

    def step(self) -> bool:
        """One poll of the current round; True once every task is done or failed.

        Raises:
            Stopped: someone wrote the stop file (``fsmw stop``) during the round.
        """
        self._ownership.still_mine()
        counts = self._counts
        counts.poll(sealed=True)  # run() polls only once the inputs are written
        self._temps.seen(counts.temps)
        done, failed = counts.done, counts.failed
        complete = done + failed == len(self._tasks)
        self._bar.update(done, failed, len(self._tasks), final=complete)
        self._round_log.update(self.round, done, failed, len(self._tasks), complete)
        if not complete and self.store.stopped():
            raise Stopped(f"{self.store.stop_file} appeared: the run was stopped from outside")
        return complete

    def _wait_for_round(self) -> None:
        # Poll again at about half the time the round should still take at its
        # rate so far (quickly at first and near the end, rarely in between),
        # back off up to master_idle_sleep_secs while nothing arrives, and pause
        # at least a multiple of what the last poll cost (see _core.pacing).
        backoff = Backoff(FIRST_POLL_SECS, self.options.master_idle_sleep_secs, self._clock.rng.uniform,
                          low=0.5)
        pace = Pace(1.0 if is_local(self._round_dir.path, self.store.fs) else POLL_PACE, self._clock.now)
        rate = Rate(self._clock.now())
        failing_since: Optional[float] = None
        while True:
            started = self._clock.now()
            try:
                if self.step():
                    break
                failing_since = None
            except (Stopped, TakenOver):
                raise
            except OSError as exc:  # a flaky mount (EIO, ESTALE...): back off and retry
                failing_since = self._listing_failed(exc, failing_since)
            pace.measure(started)
            finished = self._counts.done + self._counts.failed
            left = rate.time_left(finished, len(self._tasks), self._clock.now())
            if left is None:
                backoff.grow()
            else:
                backoff.reset(left / 2)
            self._clock.sleep(max(backoff.draw(), pace.floor()))
        self._tally()

    def _tally(self) -> None:
        self._summary.tally(self.round, self._counts.done, self._counts.failures())

    def _listing_failed(self, exc: OSError, since: Optional[float]) -> float:
        """Log a failed poll; give up (StoreError) once polls have failed for ``lease_secs``."""
        now = self._clock.now()
        since = now if since is None else since
        if now - since >= self.options.lease_secs:
            raise StoreError(f"store {self.store.root} kept failing for "
                             f"{self.options.lease_secs:.0f} s: {exc}") from exc
        self.log.warning("store error, will retry: %s", exc)
        return since

    def _close_round(self, number: int, text: str, counts: Optional[RoundCounts] = None) -> None:
        """Close round ``number``; the shards its ``counts`` saw finished (every task has its
        output) are not listed again, and their temps are the ones those counts remember."""
        finished = frozenset(counts.finished) if counts is not None else frozenset()
        closed_by = f"master {self._facts['host']}/{self._facts['pid']}"
        round_dir = self.store.round(number)
        shards = round_dir.close(text, closed_by, skip=finished)
        temps = [f"{shard.index}/{name}" for shard, names_, _ in shards for name in names_]
        temps += [t for t in counts.temps if int(t.partition("/")[0]) in finished] if counts else []
        for temp in self._temps.dead(temps):  # seen for a lease: their writers are dead
            index, _, name = temp.partition("/")
            round_dir.shard(int(index)).unlink(name)
        for _, _, ended in shards:
            for task in ended:
                self.log.info("round %d closed while task %s ran: its result will be discarded",
                              number, task)

    def _prefix(self, msg: str, kwargs: Any) -> Tuple[str, Any]:  # LoggerAdapter.process
        return self._log_prefix + msg, kwargs

