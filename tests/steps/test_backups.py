"""Hung tasks never hold up a round: backups at default settings, in rounds of any size."""

from __future__ import annotations

import os

import fsmw
from support.clock import FakeClock
from support.stores import Squarer, make_round, tasks_dir

LEASE = 120.0  # the default


def beat(store, *claims):
    """The hung holders are alive: their heartbeats move."""
    for name in claims:
        path = tasks_dir(store.root) / name
        st = os.stat(path)
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def run_until(worker, clock, store, claims, secs, want):
    """Step every 30 s (a judging pass each lease/4), heartbeats moving, for ``secs``."""
    results = []
    while clock.secs < secs:
        beat(store, *claims)
        results.append(worker.step())
        if results[-1] is want:
            return results
        clock.advance(LEASE / 4)
    return results


def hung(store, name):
    (tasks_dir(store.root) / name).write_bytes(b"host: elsewhere\npid: 1\n")


def test_a_hung_task_in_a_two_task_round_gets_a_backup_from_a_worker_that_knows_nothing(tmp_path):
    store = make_round(tmp_path, {"a": 1, "b": 2})
    hung(store, "a.claim.1")
    clock = FakeClock()
    worker = Squarer(tmp_path, 1, clock=clock)  # default options; it has finished no task
    assert worker.step() is fsmw.StepResult.WORKED  # b
    steps = run_until(worker, clock, store, ["a.claim.1"], 10 * LEASE, fsmw.StepResult.WORKED)
    assert steps[-1] is fsmw.StepResult.WORKED and clock.secs <= 3 * LEASE
    assert (tasks_dir(store.root) / "a.out").read_text() == "1"
    assert not (tasks_dir(store.root) / "a.err.1").exists()  # the hung attempt was left alone, alive


def test_a_hung_retry_gets_a_backup(tmp_path):
    store = make_round(tmp_path, {"a": 1})
    hung(store, "a.claim.1")
    (tasks_dir(store.root) / "a.err.1").write_bytes(b"error: boom\n")  # attempt 1 failed
    hung(store, "a.claim.2")  # attempt 2 hangs
    clock = FakeClock()
    worker = Squarer(tmp_path, 1, clock=clock)
    steps = run_until(worker, clock, store, ["a.claim.2"], 10 * LEASE, fsmw.StepResult.WORKED)
    assert steps[-1] is fsmw.StepResult.WORKED and (tasks_dir(store.root) / "a.claim.3").exists()
    assert (tasks_dir(store.root) / "a.out").exists()


def test_a_hung_backup_whose_original_is_gone_gets_a_backup_but_two_live_copies_are_enough(tmp_path):
    store = make_round(tmp_path, {"a": 1, "b": 2})
    hung(store, "a.claim.1")
    (tasks_dir(store.root) / "a.err.1").write_bytes(b"error: lease expired\n")  # the original was broken
    hung(store, "a.claim.2")  # its replacement hangs too
    hung(store, "b.claim.1")  # b: the original and a backup, both running, both hung
    hung(store, "b.claim.2")
    clock = FakeClock()
    worker = Squarer(tmp_path, 1, clock=clock)
    steps = run_until(worker, clock, store, ["a.claim.2", "b.claim.1", "b.claim.2"], 10 * LEASE,
                      fsmw.StepResult.WORKED)
    assert steps[-1] is fsmw.StepResult.WORKED and (tasks_dir(store.root) / "a.out").exists()
    more = run_until(worker, clock, store, ["b.claim.1", "b.claim.2"], 20 * LEASE, fsmw.StepResult.WORKED)
    assert fsmw.StepResult.WORKED not in more and not (tasks_dir(store.root) / "b.claim.3").exists()
