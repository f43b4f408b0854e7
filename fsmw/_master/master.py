"""The master: write a round of inputs, wait for every result, repeat, stop.

Protocol per round k:
  1. ``mkdir round-k`` (never reused: a late file of round k can never satisfy
     round k+1), then ``create_input_files()`` writes each input two-stage
     (temp, fsync where wanted (see ``_fsinfo``), rename), then ``SEALED``;
  2. poll with one listing of ``round-k`` per pass (parsing only the names
     that changed since the last one), again at about half the time the
     round should still take at its rate so far, backing off up to
     ``master_idle_sleep_secs`` while nothing arrives, and pausing at least
     what the last poll took (four times that on a shared file system); a task is done when
     ``<task>.out`` exists and failed when ``<task>.failed`` does (the master
     marks it itself if ``max_attempts`` error records exist and no claim is
     live);
  3. (on a local file system, ``syncfs`` the store: see ``_fsinfo``)
     ``process_output_files(outputs)``; if it returns True, make round k+1,
     then write ``CLOSED`` in round k (workers follow it to k+1); otherwise
     write ``STOP`` in the store, then ``CLOSED``.  Temp files left in round k
     by crashed writers (seen by the master for at least ``lease_secs``) are
     removed when it closes.

Property: :meth:`Master.run` returns once every task of every round is done or
failed, and reports each failure instead of waiting for ever.
"""

from __future__ import annotations

import logging
import os
import random
import time
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Set, Union

from .._core import layout as names
from .._core.atomic import unlink_quietly, write_replace, write_temp
from .._core.fsinfo import fsync_wanted, is_local, sync_file_system
from .._core.errors import StoreError, TaskNameError
from .._options import Options
from .progress import Progress
from .._core.owner import format_record, owner_facts
from .._worker.recovery import last_error
from .._core.records import write_failed
from .._core.claims import read_text
from .._core.store import RoundTracker, RoundView, Store
from .summary import Failure, Outputs, Summary

_log = logging.getLogger("fsmw.master")
OUT_SUFFIX = "." + names.OUT
OUT_LEN = len(OUT_SUFFIX)


class Stopped(StoreError):
    """The stop file appeared while the master was waiting for a round."""
FIRST_POLL_SECS = 0.02
POLL_PACE = 4.0
PROGRESS_LOG_SECS = 10.0


class Master:
    """Writes inputs into a store and collects the workers' outputs.

    Args:
        store: the store directory (created if its parent exists).
        clock, sleep: injectable for tests.
        **options: tuning options, see :class:`fsmw.Options`.
    """

    def __init__(self, store: Union[str, "os.PathLike[str]"], *,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, **options: object) -> None:
        self.options = Options(**options)  # type: ignore[arg-type]
        self.store = Store(store)
        self._clock = clock
        self._sleep = sleep
        self.log = logging.LoggerAdapter(_log, {})
        self.log.process = self._prefix  # type: ignore[method-assign]
        self.round = 0
        self._tasks: Set[str] = set()
        self._view = RoundView()
        self._tracker = RoundTracker()
        self._done: Set[str] = set()
        self._summary = Summary()
        self._rounds_run: List[int] = []
        self._temps: Dict[str, float] = {}
        self._fsync = self.options.fsync is not False  # resolved by run() once the store exists
        self._round_dir = os.fspath(self.store.root)  # temp name -> when this master first saw it
        self._bar = Progress(self.options.progress, self.options.progress_secs, clock)
        self._logged = (-1, -1)
        self._logged_at = float("-inf")

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
        final = f"{self._round_dir}/{name}.{names.IN}"
        os.rename(write_temp(self._round_dir, data, self._fsync), final)
        self._tasks.add(name)
        return Path(final)

    # -- running ------------------------------------------------------------
    def run(self) -> Summary:
        """Run rounds until :meth:`process_output_files` returns False."""
        started = self._clock()
        self.store.check(create=True)
        self._fsync = fsync_wanted(self.options.fsync, self.store.root)
        if self.store.stop_file.exists():
            raise StoreError(f"store {self.store.root} holds a finished run ({names.STOP} exists); "
                             f"use a new store, or remove it to start over")
        earlier = self.store.rounds()
        self._begin_round(max(earlier, default=0) + 1)
        self._close_abandoned(earlier)
        while True:
            try:
                self._wait_for_round()
            except Stopped as exc:
                self.log.warning("%s; returning without the round's remaining results", exc)
                self._summary.stopped = True
                self._tally()
                self._close_round(self.round, "stopped from outside")
                break
            if not self._fsync:
                sync_file_system(self._round_dir)  # see _fsinfo: once per round instead
            outputs = Outputs(self._round_dir, sorted(self._tasks & self._view.outputs))
            again = self.process_output_files(outputs)
            previous = self.round
            if again:
                self._begin_round(previous + 1)
            else:
                write_replace(self.store.stop_file, format_record(owner_facts("master", None)))
            self._close_round(previous, "next: " + (names.round_name(self.round) if again else "STOP"))
            if not again:
                break
        # Count again: late results of earlier rounds are discarded as they arrive.
        self._summary.duplicates = sum(self.store.scan(n).duplicates for n in self._rounds_run)
        self._summary.wall_secs = self._clock() - started
        self.log.info("%s", self._summary)
        return self._summary

    def step(self) -> bool:
        """One poll of the current round; True once every task is done or failed.

        Raises:
            Stopped: someone wrote the stop file (``fsmw stop``) during the round.
        """
        came = self._tracker.update(self.store.listing(self.round))
        view = self._view = self._tracker.view
        now = self._clock()
        if view.temps or self._temps:
            self._temps = {name: self._temps.get(name, now) for name in view.temps}
        self._mark_poisoned(view)
        self._done.update(t for t in (n[:-OUT_LEN] for n in came if n.endswith(OUT_SUFFIX))
                          if t in self._tasks)
        done = len(self._done)
        failed = len((self._tasks & view.failed) - view.outputs) if view.failed else 0
        complete = done + failed == len(self._tasks)
        self._progress(done, failed, complete)
        if not complete and self.store.stop_file.exists():
            raise Stopped(f"{self.store.stop_file} appeared: the run was stopped from outside")
        return complete

    def _begin_round(self, number: int) -> None:
        self.round, self._tasks = number, set()
        self._round_dir = os.fspath(self.store.round_dir(number))
        self._tracker, self._done = RoundTracker(), set()
        self._bar.start_round(number)
        self._rounds_run.append(number)
        try:
            self.store.round_dir(number).mkdir()
        except FileExistsError as exc:
            raise StoreError(f"{self.store.round_dir(number)} already exists: is another master "
                             f"running on {self.store.root}?") from exc
        self.log.info("round %d: creating inputs", number)
        self.create_input_files()
        write_replace(self.store.marker(number, names.SEALED), f"tasks: {len(self._tasks)}\n".encode())
        self.log.info("round %d: %d tasks", number, len(self._tasks))

    def _wait_for_round(self) -> None:
        # Poll again at about half the time the round should still take at its
        # rate so far (quickly at first and near the end, rarely in between),
        # back off up to master_idle_sleep_secs while nothing arrives, and pause
        # at least a multiple of what the last poll cost (on a network file
        # system a listing of a big round costs the server work per entry).
        pace = 1.0 if is_local(self._round_dir) else POLL_PACE
        pause, seen = FIRST_POLL_SECS, -1
        began, at_start = self._clock(), None
        while True:
            started = self._clock()
            if self.step():
                break
            now = self._clock()
            cost = now - started
            finished = len(self._done) + len(self._view.failed)
            if at_start is None:
                at_start = finished
            if finished != seen:
                rate = (finished - at_start) / (now - began) if now > began else 0.0
                left = len(self._tasks) - finished
                pause = FIRST_POLL_SECS if rate <= 0 else left / rate / 2
            else:
                pause *= 2
            pause = min(max(pause, FIRST_POLL_SECS), self.options.master_idle_sleep_secs)
            seen = finished
            self._sleep(max(random.uniform(pause / 2, pause), pace * cost))
        self._tally()

    def _tally(self) -> None:
        """Add the current round's results, as of the last poll, to the summary."""
        view, number = self._view, self.round
        self._summary.rounds += 1
        self._summary.done += len(self._tasks & view.outputs)
        round_dir = self.store.round_dir(number)
        for task in sorted((self._tasks & view.failed) - view.outputs):
            failure = Failure(number, task, last_error(round_dir, task, view.errors.get(task, [])))
            self._summary.failed.append(failure)

    def _mark_poisoned(self, view: RoundView) -> None:
        limit = self.options.max_attempts
        round_dir = self.store.round_dir(self.round)
        for task, gens in view.errors.items():
            if len(gens) >= limit and task in self._tasks and not view.finished(task) \
                    and view.live_gen(task) is None:
                last = round_dir / names.file_name(task, names.ERR, max(gens))
                if write_failed(round_dir, task, len(gens), read_text(last) or b""):
                    view.failed.add(task)
                    self.log.warning("task %s failed %d times; marked failed", task, len(gens))

    def _close_abandoned(self, earlier: List[int]) -> None:
        """Send workers still in rounds of an earlier master on to the new round."""
        for number in earlier:
            if not self.store.marker(number, names.CLOSED).exists():
                self.log.warning("round %d was left unfinished by an earlier master; closing it",
                                 number)
                self._close_round(number, f"abandoned; next: {names.round_name(self.round)}")

    def _close_round(self, number: int, text: str) -> None:
        write_replace(self.store.marker(number, names.CLOSED), (text + "\n").encode())
        round_dir = self.store.round_dir(number)
        # Only temps this master has seen for a whole lease belong to dead writers;
        # a younger one may be a live (late) writer's, which must not lose it.
        oldest = self._clock() - self.options.lease_secs
        for name in self.store.scan(number).temps:
            if self._temps.get(name, float("inf")) <= oldest:
                unlink_quietly(round_dir / name)
        self._temps = {}

    def _progress(self, done: int, failed: int, complete: bool) -> None:
        self._bar.update(done, failed, len(self._tasks), final=complete)
        now = self._clock()
        if (done, failed) == self._logged or now - self._logged_at < PROGRESS_LOG_SECS \
                and not complete:
            return
        self._logged, self._logged_at = (done, failed), now
        self.log.debug("round %d: %d/%d done, %d failed", self.round, done, len(self._tasks), failed)

    def _prefix(self, msg: str, kwargs):  # LoggerAdapter.process
        return f"master@{owner_facts('master', None)['host']}: {msg}", kwargs
