"""Inputs written on threads (a shared file system's master): all in place before SEALED, errors raised."""

import threading

import pytest

import fsmw
from fsmw._master.parallel import ParallelWrites
from fsmw._master.resume import create_inputs
from support.stores import round_dir, tasks_dir


def test_finish_waits_for_every_write_and_the_queue_stays_bounded():
    done, lock = [], threading.Lock()
    release = threading.Event()
    writes = ParallelWrites(threads=2)

    def write(i):
        release.wait(5)
        with lock:
            done.append(i)

    for i in range(8):  # the limit is 4 * 2: none of these waits
        writes.submit(write, i)
    assert len(writes._queued) == 8
    release.set()
    for i in range(8, 40):
        writes.submit(write, i)
        assert len(writes._queued) <= 8
    writes.finish()
    assert sorted(done) == list(range(40))


def test_the_first_failed_write_is_raised_by_finish():
    writes = ParallelWrites(threads=2)

    def write(i):
        if i == 3:
            raise OSError(28, "No space left on device")

    for i in range(6):
        writes.submit(write, i)
    with pytest.raises(OSError, match="No space left"):
        writes.finish()


class Eleven(fsmw.Master):
    def create_input_files(self):
        for i in range(11):
            self.create_input_file(f"t{i:02d}", str(i))


@pytest.mark.parametrize("parallel", [False, True], ids=["serial", "threads"])
def test_inputs_written_on_threads_fill_the_same_shards_and_seal_the_same_digest(tmp_path, parallel):
    store = tmp_path / "store"
    master = Eleven(store, shard_size=4, progress=False)
    master.store.check(create=True)
    tasks = create_inputs(master.store.round(1), master._yield_inputs, 4, False, master.log,
                          parallel=parallel)
    assert len(tasks) == 11
    shards = [sorted(p.name for p in tasks_dir(store, 1, i).iterdir()) for i in range(3)]
    assert shards == [[f"t{i:02d}.in" for i in range(0, 4)], [f"t{i:02d}.in" for i in range(4, 8)],
                      [f"t{i:02d}.in" for i in range(8, 11)]]
    assert (tasks_dir(store, 1, 2) / "t10.in").read_text() == "10"
    sealed = (round_dir(store) / "SEALED").read_text()
    assert sealed.startswith("tasks: 11\n")
    other = tmp_path / "other"
    twin = Eleven(other, shard_size=4, progress=False)
    twin.store.check(create=True)
    create_inputs(twin.store.round(1), twin._yield_inputs, 4, False, twin.log, parallel=not parallel)
    assert (round_dir(other) / "SEALED").read_text() == sealed


def test_a_hook_that_raises_while_inputs_are_written_on_threads_leaves_no_thread(tmp_path):
    class Raising(fsmw.Master):
        def create_input_files(self):
            for i in range(50):
                self.create_input_file(f"t{i}", "x")
            raise ValueError("the hook failed")

    master = Raising(tmp_path / "store", progress=False)
    master.store.check(create=True)
    before = threading.active_count()
    with pytest.raises(ValueError, match="the hook failed"):
        create_inputs(master.store.round(1), master._yield_inputs, 1000, False, master.log, parallel=True)
    assert threading.active_count() == before
    assert not (round_dir(tmp_path / "store") / "SEALED").exists()
