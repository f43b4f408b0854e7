"""What the performance work relies on: file system detection, the per-round
flush, idle passes that list once, batched journal lines and lazy outputs."""

import os
import threading

import pytest

import fsmw
from fsmw import StepResult
from fsmw._core import fsinfo as _fsinfo
from fsmw._core.journal import FLUSH_SECS, Journal
from fsmw._core.rounddir import RoundDir
from fsmw._core.system import FileSystem
from support.clock import FakeClock
from support.stores import Squarer, foreign_claim, make_round

MOUNTINFO = """\
22 1 253:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
30 22 0:26 / /dev/shm rw shared:5 - tmpfs tmpfs rw
41 22 0:40 / /home rw shared:9 - nfs4 server:/home rw,vers=4.2
42 41 0:41 / /home/me/gluster rw shared:10 - fuse.glusterfs node:/vol rw
43 22 0:42 / /mnt/odd\\040dir rw shared:11 - xfs /dev/vdb rw
"""


@pytest.mark.parametrize("path, kind, local", [
    ("/var/tmp/store", "ext4", True), ("/dev/shm/s", "tmpfs", True),
    ("/home/me/store", "nfs4", False), ("/home/me/gluster/store", "fuse.glusterfs", False),
    ("/mnt/odd dir/store", "xfs", True)])
def test_the_store_file_system_decides_whether_files_are_fsynced(path, kind, local):
    assert _fsinfo.fs_type(path, MOUNTINFO) == kind
    fs = Mounts(MOUNTINFO)
    assert _fsinfo.fsync_wanted(None, path, fs) is (not local)
    assert _fsinfo.fsync_wanted(True, path, fs) is True and _fsinfo.fsync_wanted(False, path, fs) is False


def test_an_unknown_file_system_counts_as_shared():
    assert _fsinfo.fsync_wanted(None, "/x", Mounts("")) is True


class Mounts(FileSystem):
    """The real file system, with a mount table of the test's choosing."""

    def __init__(self, table):
        self.table = table

    def mountinfo(self):
        return self.table

    @staticmethod
    def realpath(path):
        return str(path)


class Flushes(FileSystem):
    """The real file system, recording syncfs calls instead of making them."""

    def __init__(self):
        self.flushed = []

    def syncfs(self, path):
        self.flushed.append(path)


class Squares(fsmw.Master):
    def create_input_files(self):
        for i in range(5):
            self.create_input_file(f"t{i}", str(i))

    def process_output_files(self, outputs):
        self.seen.append([(k, outputs[k].read_text()) for k in outputs])
        assert "nope" not in outputs
        with pytest.raises(KeyError):
            outputs["nope"]
        return len(self.seen) < 2


def test_a_local_store_is_flushed_once_per_round_and_outputs_come_in_order(tmp_path):
    fs = Flushes()
    master = Squares(tmp_path / "store", progress=False, fs=fs)
    master.seen = []
    worker = Squarer(tmp_path / "store", 1, worker_idle_sleep_secs=0.05)
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        summary = master.run()
    finally:
        thread.join(30)
    assert not thread.is_alive()
    assert summary.done == 10 and summary.rounds == 2
    assert master.seen[0] == [(f"t{i}", str(i * i)) for i in range(5)]
    assert [os.path.basename(p) for p in fs.flushed] == ["round-000001", "round-000002"]


def test_with_fsync_forced_the_round_is_not_flushed_again(tmp_path):
    fs = Flushes()
    master = Squares(tmp_path / "store", progress=False, fsync=True, fs=fs)
    master.seen = []
    worker = Squarer(tmp_path / "store", 1, worker_idle_sleep_secs=0.05)
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        master.run()
    finally:
        thread.join(30)
    assert fs.flushed == []


class Counting(FileSystem):
    """The real file system, counting calls once ``on`` is set."""

    def __init__(self):
        self.on, self.calls = False, []
        for name in ("listdir", "stat", "lstat", "open", "link", "unlink", "utime", "rename", "mkdir"):
            real = getattr(FileSystem, name)
            setattr(self, name, lambda *a, _n=name, _r=real, **k: (self.count(_n), _r(*a, **k))[1])

    def count(self, name):
        if self.on:
            self.calls.append(name)


def test_an_idle_pass_is_one_listing_and_a_look_for_stop_and_closed_once_a_second(tmp_path):
    store = make_round(tmp_path / "store", {"a": 1})  # sealed: no shard will be added
    foreign_claim(store, "a")  # another worker runs the one task
    fs, clock = Counting(), FakeClock()
    worker = Squarer(tmp_path / "store", 1, fs=fs, clock=clock, lockfile_timeout_threshold=0)
    assert worker.step() is StepResult.IDLE  # entered the round: nothing to do
    fs.on = True
    for _ in range(3):
        clock.advance(0.3)
        assert worker.step() is StepResult.IDLE
    assert fs.calls == ["listdir"] * 3
    fs.calls.clear()
    clock.advance(0.2)  # a second since the last look: STOP, CLOSED (and REQUEUED), one lstat each
    assert worker.step() is StepResult.IDLE
    assert fs.calls == ["lstat", "lstat", "lstat", "listdir"]


def test_journal_lines_are_written_at_once_after_a_quiet_spell_and_batched_in_bursts(tmp_path):
    clock = FakeClock(100.0)
    journal = Journal({"worker_id": 1, "host": "h", "pid": 2, "job_id": None}, clock=clock)
    shard = RoundDir(str(tmp_path), 1, FileSystem()).shard(0)  # its journal goes in the round directory

    def lines():
        found = [n for n in os.listdir(tmp_path) if n.startswith(".journal.")]
        return (tmp_path / found[0]).read_text().splitlines() if found else []

    journal.record(shard, "a", 1, "claim", "published", 1.0, 2.0)
    assert len(lines()) == 1  # nothing written for a while: at once
    clock.advance(FLUSH_SECS / 10)
    journal.record(shard, "b", 1, "claim", "published", 2.0, 3.0)
    assert len(lines()) == 1  # a burst: held back
    clock.advance(FLUSH_SECS)
    journal.record(shard, "c", 1, "claim", "failed", 3.0, 4.0)
    assert [line.split(",")[0] for line in lines()] == ['{"task":"a"', '{"task":"b"', '{"task":"c"']
    journal.record(shard, "d", 2, "break", "published", 4.0, 5.0)
    journal.close()
    assert len(lines()) == 4
