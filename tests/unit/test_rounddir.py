"""RoundDir: the one home of marking failed and breaking claims; PendingTasks' paced pass."""

from __future__ import annotations

import threading

import fsmw
from support.clock import FakeClock
from fsmw._worker.claimer import Claimer
from fsmw._worker.pending import PendingTasks


def round_with(tmp_path, names):
    round_dir = fsmw.Store(tmp_path).round(1)
    round_dir.create()
    for name in names:
        (tmp_path / "round-000001" / name).write_bytes(b"error: boom\n" if ".err." in name else b"")
    return round_dir


def test_a_poisoned_task_is_marked_failed_once_and_only_on_a_fresh_look(tmp_path):
    used = ["a.in", "a.claim.1", "a.err.1", "a.claim.2", "a.err.2", "a.claim.3", "a.err.3"]
    round_dir = round_with(tmp_path, used + ["b.in", "b.claim.1", "b.err.1", "b.claim.2", "b.err.2",
                                             "b.claim.3", "b.err.3"])
    old_view = round_dir.scan()
    (tmp_path / "round-000001" / "b.claim.4").write_bytes(b"")  # a backup won a newer attempt since
    assert round_dir.mark_poisoned(old_view, 3) == ["a"]
    assert (tmp_path / "round-000001" / "a.failed").read_bytes().startswith(b"attempts: 3\nerror: boom")
    assert not (tmp_path / "round-000001" / "b.failed").exists()
    assert round_dir.mark_poisoned(round_dir.scan(), 3) == []  # marked once


def test_record_failure_marks_the_task_failed_at_the_limit(tmp_path):
    round_dir = round_with(tmp_path, ["t.in", "t.claim.1", "t.err.1", "t.claim.2"])
    assert round_dir.record_failure("t", 2, {"error": "again"}, "", 3) == (2, False)
    assert not (tmp_path / "round-000001" / "t.failed").exists()
    assert round_dir.record_failure("t", 3, {"error": "last"}, "Traceback", 3) == (3, True)
    assert b"error: last" in (tmp_path / "round-000001" / "t.failed").read_bytes()


def test_a_paced_pass_stopped_while_it_waits_claims_nothing(tmp_path):
    round_dir = round_with(tmp_path, ["a.in", "SEALED"])
    wake = threading.Event()
    clock = FakeClock(on_sleep=lambda secs: wake.set())  # a stop request comes while it waits
    pending = PendingTasks(round_dir, clock, pace=4.0, reuse_secs=5.0, max_attempts=3, wake=wake)
    claimer = Claimer(round_dir, {"host": "h"}, clock)
    pending.begin_pass()  # lists: a is pending
    (tmp_path / "round-000001" / "a.claim.1").write_bytes(b"")  # another worker took a
    (tmp_path / "round-000001" / "c.in").write_bytes(b"")  # and c is new: a listing would find it
    clock.advance(0.001)
    pending.begin_pass()  # the queue is fresh: no listing this pass
    assert pending.next_claim(claimer) is None and wake.is_set()
    claimer.close()
    assert sorted(p.name for p in (tmp_path / "round-000001").glob("*.claim.*")) == ["a.claim.1"]
