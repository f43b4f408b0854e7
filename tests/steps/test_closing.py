"""Closed means closed, and STOP stops, master or no master (one process, a fake clock)."""

from __future__ import annotations

import fsmw
from support.clock import FakeClock
from support.stores import Squarer, make_round, round_dir, tasks_dir


def claims(store):
    return sorted(p.name for p in tasks_dir(store.root).glob("*.claim.*"))


def test_a_closed_round_gets_no_new_task_within_a_second(tmp_path):
    store = make_round(tmp_path, {"a": 1, "b": 2, "c": 3})
    clock = FakeClock()
    worker = Squarer(tmp_path, 1, clock=clock)
    assert worker.step() is fsmw.StepResult.WORKED  # one task (random walk), the listing shows two more
    store.round(1).close("stopped from outside", "test")
    clock.advance(1.0)
    assert worker.step() is fsmw.StepResult.IDLE  # left the round: no newer round, no STOP
    assert len(claims(store)) == 1 and len(list(tasks_dir(store.root).glob("*.out"))) == 1


def test_stop_ends_a_worker_in_an_open_round_whose_master_is_gone(tmp_path):
    store = make_round(tmp_path, {"a": 1, "b": 2, "c": 3})
    clock = FakeClock()
    worker = Squarer(tmp_path, 1, clock=clock)
    assert worker.step() is fsmw.StepResult.WORKED
    store.write_stop({"reason": "fsmw stop"})  # nobody closes the round
    clock.advance(1.0)
    assert worker.run() is fsmw.ExitCode.STOPPED
    assert len(claims(store)) == 1  # it started nothing new


def test_a_result_that_arrives_after_the_round_closed_is_a_dup_never_an_out(tmp_path):
    store = make_round(tmp_path, {"a": 1})

    class Late(Squarer):
        def process_file(self, input_path, output_path):
            super().process_file(input_path, output_path)
            # The master closes the round (stopped from outside) while this task runs.
            shards = store.round(1).close("stopped from outside", "master m/1")
            self.ended = [task for _, _, ended in shards for task in ended]

    worker = Late(tmp_path, 1, clock=FakeClock())
    assert worker.step() is fsmw.StepResult.WORKED
    assert worker.ended == ["a"]
    names = sorted(p.name for p in tasks_dir(store.root).iterdir() if not p.name.startswith("."))
    assert "a.out" not in names and [n for n in names if n.startswith("a.dup.")]
    record = (tasks_dir(store.root) / "a.err.1").read_text()
    assert "the round was closed while attempt 1 ran" in record and "broken_by: master m/1" in record
    assert "broken_by: master m/1" in (tasks_dir(store.root) / "a.claim.1").read_text()  # fenced


def test_closing_a_round_leaves_finished_and_ended_attempts_alone(tmp_path):
    store = make_round(tmp_path, {"a": 1, "b": 2})
    for name, data in (("a.claim.1", b"host: h\n"), ("a.out", b"1"), ("b.claim.1", b"host: h\n"),
                       ("b.err.1", b"error: boom\n")):
        (tasks_dir(store.root) / name).write_bytes(data)
    ((shard, temps, ended),) = store.round(1).close("next: STOP", "master m/1")
    assert shard.index == 0 and temps == [] and ended == []
    assert (round_dir(tmp_path) / "CLOSED").read_text() == "next: STOP\n"
    assert (tasks_dir(store.root) / "a.claim.1").read_bytes() == b"host: h\n"
    assert (tasks_dir(store.root) / "b.err.1").read_bytes() == b"error: boom\n"


def test_two_workers_in_one_process_never_take_each_others_live_claims(tmp_path):
    store = make_round(tmp_path, {"a": 1, "b": 2})
    clock = FakeClock()
    # Free fcntl locks would count as dead holders: the case where probing a sibling goes wrong.
    options = dict(clock=clock, take_lockfile_existence_as_lock=False, lease_secs=60,
                   lockfile_timeout_threshold=0)  # no backup copies: only the lock judgement counts
    sibling = Squarer(tmp_path, 2, **options)

    class Busy(Squarer):
        def process_file(self, input_path, output_path):
            self.seen = [sibling.step()]  # the sibling first sees our claim (and does the other task)
            clock.advance(5.0)  # longer than the grace after which a free lock means a dead holder
            self.seen.append(sibling.step())  # ...and judges it again while we hold it
            super().process_file(input_path, output_path)

    busy = Busy(tmp_path, 1, **options)
    assert busy.step() is fsmw.StepResult.WORKED
    assert busy.seen == [fsmw.StepResult.WORKED, fsmw.StepResult.IDLE]
    assert not list(tasks_dir(store.root).glob("*.err.*"))  # nothing was broken
    assert sorted(p.name for p in tasks_dir(store.root).glob("*.out")) == ["a.out", "b.out"]
