"""Promises the README makes about failures around the store, shown in one process with seams.

The fake clock (``support.clock.FakeClock``) makes sleeps instant and lets
a test act while a master or worker "sleeps"; a FileSystem subclass injects
the errors.
"""

from __future__ import annotations

import errno
import sys
import os

import pytest

import fsmw
from fsmw._core.system import FileSystem
from support.clock import FakeClock
from support.stores import Squarer, make_round, tasks_dir


class Squares(fsmw.Master):
    def create_input_files(self):
        for i in range(3):
            self.create_input_file(f"t{i}", str(i))


def test_a_worker_waits_for_the_store_to_appear(tmp_path):
    store = tmp_path / "store"
    master = Squares(store, progress=False)
    sleeps = []

    def master_starts_late(secs):
        sleeps.append(1)
        if len(sleeps) == 3:  # the worker has waited a while: now the run happens
            master.store.check(create=True)
            master.begin_round()
        if len(sleeps) == 6:  # what a master does at the end of its last round
            master.store.write_stop({"role": "test"})
            master.store.round(1).write_marker("CLOSED", "next: STOP\n")

    worker = Squarer(store, 1, clock=FakeClock(on_sleep=master_starts_late), worker_max_idle_secs=60)
    assert worker.run() is fsmw.ExitCode.STOPPED
    assert sorted(p.name for p in tasks_dir(store).glob("*.out")) == ["t0.out", "t1.out", "t2.out"]


def test_a_store_that_never_appears_is_exit_code_1_naming_it(tmp_path, caplog):
    worker = Squarer(tmp_path / "store", 1, clock=FakeClock(), worker_max_idle_secs=30)
    assert worker.run() is fsmw.ExitCode.ERROR
    assert f"store {tmp_path / 'store'} did not appear within 30 s" in caplog.text


class FlakyListings(FileSystem):
    """Listing the round fails with EIO, then ESTALE, then works."""

    def __init__(self):
        self.errors = [errno.EIO, errno.ESTALE]

    def listdir(self, path):
        if "round-" in str(path) and self.errors:
            code = self.errors.pop(0)
            raise OSError(code, os.strerror(code))
        return os.listdir(path)


def test_store_errors_are_retried_and_the_work_gets_done(tmp_path):
    master = Squares(tmp_path / "store", progress=False)
    master.store.check(create=True)
    master.begin_round()
    fs = FlakyListings()

    def stop_when_done(secs):
        if len(list(tasks_dir(master.store.root).glob("*.out"))) == 3:
            master.store.write_stop({"role": "test"})
            master.store.round(1).write_marker("CLOSED", "next: STOP\n")

    worker = Squarer(master.store.root, 1, clock=FakeClock(on_sleep=stop_when_done), fs=fs)
    assert worker.run() is fsmw.ExitCode.STOPPED and fs.errors == []
    assert master.step() is True


class NoJournals(FileSystem):
    """Every journal open fails (a full disk, say); nothing else does."""

    @staticmethod
    def open(path, flags, mode=0o777):
        if "/.journal." in str(path):
            raise OSError(errno.ENOSPC, "No space left on device")
        return os.open(path, flags, mode)


def test_a_journal_that_cannot_be_written_fails_no_task(tmp_path):
    master = Squares(tmp_path / "store", progress=False)
    master.store.check(create=True)
    master.begin_round()
    worker = Squarer(master.store.root, 1, clock=FakeClock(), fs=NoJournals())
    while worker.step() is fsmw.StepResult.WORKED:
        pass
    assert master.step() is True
    assert len(list(tasks_dir(master.store.root).glob("*.out"))) == 3
    assert not list(tasks_dir(master.store.root).glob("*.err.*"))
    assert not list(master.store.round_dir(1).glob(".journal.*"))


def test_the_master_removes_temps_it_has_seen_for_a_lease_when_the_round_closes(tmp_path):
    planted = {}

    class Planting(Squares):
        def create_input_files(self):
            super().create_input_files()
            planted["dead"] = tasks_dir(self.store.root, self.round) / ".tmp.gone.1.deadbeef0"
            planted["dead"].write_bytes(b"a writer that died")

    clock = FakeClock()
    master = Planting(tmp_path / "store", progress=False, clock=clock, lease_secs=10)
    worker = Squarer(tmp_path / "store", 1, clock=clock)

    def a_lease_later(secs):  # a late writer starts, and the tasks get done
        if clock.secs >= 10 and "young" not in planted:
            planted["young"] = planted["dead"].with_name(".tmp.late.2.cafe0")
            planted["young"].write_bytes(b"a live writer, late")
            while worker.step() is fsmw.StepResult.WORKED:
                pass

    clock.on_sleep = a_lease_later
    assert master.run().done == 3
    assert not planted["dead"].exists() and planted["young"].exists()



class FailingRoundListings(FileSystem):
    """Listing a round fails with EIO ``times`` times (for ever if None), then works."""

    def __init__(self, times):
        self.times = times

    def listdir(self, path):
        if "round-" in str(path) and (self.times is None or self.times > 0):
            self.times = None if self.times is None else self.times - 1
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return os.listdir(path)


def test_the_master_retries_a_failing_listing_and_gives_up_after_a_lease(tmp_path):
    clock = FakeClock()
    worker = Squarer(tmp_path / "store", 1, clock=clock)
    clock.on_sleep = lambda secs: [None for _ in iter(worker.step, fsmw.StepResult.IDLE)]
    fs = FailingRoundListings(2)
    master = Squares(tmp_path / "store", progress=False, clock=clock, fs=fs)
    assert master.run().done == 3 and fs.times == 0  # two failed polls, then the round is collected

    stuck = Squares(tmp_path / "other", progress=False, clock=FakeClock(), lease_secs=30,
                    fs=FailingRoundListings(None))
    with pytest.raises(fsmw.StoreError, match="kept failing for 30 s: .*Input/output error"):
        stuck.run()


def test_sys_exit_in_process_file_records_the_attempt_frees_the_task_and_ends_the_worker(tmp_path):
    class Quitter(fsmw.Worker):
        def process_file(self, input_path, output_path):
            sys.exit(7)

    master = Squares(tmp_path / "store", progress=False)
    master.store.check(create=True)
    master.begin_round()
    with pytest.raises(SystemExit) as exited:
        Quitter(master.store.root, 1, clock=FakeClock()).run()
    assert exited.value.code == 7
    shard = master.store.round(1).shard(0)
    (record,) = [n for n in shard.listing() if ".err." in n]
    assert b"error: SystemExit: 7" in shard.read(record)
    view = shard.scan()
    assert view.running() == {} and sorted(view.pending()) == ["t0", "t1", "t2"]  # free for others
    assert not [n for n in shard.listing() if n.startswith(".worker.")]  # the token is gone


class NoRecords(FileSystem):
    """Error records cannot be published (a full disk); ``unlinks`` may fail too."""

    def __init__(self, unlinks_fail=False):
        self.unlinks_fail = unlinks_fail

    @staticmethod
    def link(src, dst):
        if ".err." in str(dst):
            raise OSError(errno.ENOSPC, "No space left on device")
        os.link(src, dst)

    def unlink(self, path):
        if self.unlinks_fail and ".claim." in str(path):
            raise OSError(errno.EIO, "Input/output error")
        os.unlink(path)


class Failing(fsmw.Worker):
    def process_file(self, input_path, output_path):
        raise ValueError("boom")


def test_a_failure_that_cannot_be_recorded_gives_the_task_back_at_once(tmp_path):
    store = make_round(tmp_path, {"a": 1})
    worker = Failing(tmp_path, 1, clock=FakeClock(), fs=NoRecords())
    with pytest.raises(OSError, match="No space left"):
        worker.step()
    view = store.round(1).shard(0).scan()
    assert view.claims == {} and view.pending() == ["a"]  # no live claim is left behind


def test_when_the_claim_cannot_be_given_back_either_the_worker_exits(tmp_path):
    make_round(tmp_path, {"a": 1})
    worker = Failing(tmp_path, 1, clock=FakeClock(), fs=NoRecords(unlinks_fail=True))
    assert worker.run() is fsmw.ExitCode.ERROR
