"""A process that dies holding several claims (several Workers) has them all freed together."""

from __future__ import annotations

import os

import fsmw
from support.clock import FakeClock
from support.stores import Squarer, make_round, tasks_dir

LEASE = 8.0


def dead_claim(store, task, pid):
    """A claim whose holder died: it names its holder and its heartbeat never moves again."""
    (tasks_dir(store.root) / f"{task}.claim.1").write_bytes(f"host: elsewhere\npid: {pid}\n".encode())


def test_all_stale_claims_of_a_listing_are_broken_in_one_pass_and_the_others_given_back(tmp_path):
    store = make_round(tmp_path, {"a": 1, "b": 2, "c": 3, "d": 4})
    for task in ("a", "b", "c"):
        dead_claim(store, task, 4242)  # one process, three Worker objects, all killed
    clock = FakeClock()
    judge = Squarer(tmp_path, 1, clock=clock, lease_secs=LEASE, process_secs=100 * LEASE)  # no backups
    assert judge.step() is fsmw.StepResult.WORKED  # d, and the first sight of the three claims
    rd = tasks_dir(store.root)
    while not (rd / "a.err.1").exists() and clock.secs < 3 * LEASE:
        clock.advance(LEASE / 4)
        judge.step()
    broke_at = clock.secs
    assert LEASE <= broke_at <= LEASE + LEASE / 4 + 0.01
    # The same pass broke all three: each lost attempt is recorded and fenced ...
    for task in ("a", "b", "c"):
        assert b"lease expired" in (rd / f"{task}.err.1").read_bytes(), task
        assert b"broken_by" in (rd / f"{task}.claim.1").read_bytes(), task
    # ... the judge ran one of them, and gave the other two back: their next
    # generation was won and removed again, so any worker can claim them now.
    ran = [t for t in ("a", "b", "c") if (rd / f"{t}.out").exists()]
    assert len(ran) == 1
    given_back = sorted({"a", "b", "c"} - set(ran))
    assert all(not (rd / f"{t}.claim.2").exists() for t in given_back)
    other = Squarer(tmp_path, 2, clock=FakeClock(broke_at))  # a fresh worker, no judging history
    assert [other.step(), other.step()] == [fsmw.StepResult.WORKED] * 2
    assert all((rd / f"{t}.out").read_text() == str(int(ord(t) - 96) ** 2) for t in "abcd")
    assert sorted(n for n in os.listdir(rd) if ".claim." in n) == \
        sorted([f"{t}.claim.1" for t in "abcd"] + [f"{t}.claim.2" for t in "abc"])
