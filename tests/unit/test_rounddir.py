"""Shard: the one home of marking failed and breaking claims; RoundDir's shards; PendingTasks' paced pass."""

from __future__ import annotations

import threading

import fsmw
from support.clock import FakeClock
from fsmw._core.pacing import Pace
from fsmw._core.shard import LEGACY
from fsmw._worker.claimer import Claimer
from fsmw._worker.pending import PendingTasks

SHARD = ("round-000001", "shard-000000")


def round_with(tmp_path, names):
    """Shard 0 of round 1 holding the files ``names`` (error records say "boom")."""
    round_dir = fsmw.Store(tmp_path).round(1)
    round_dir.create()
    shard = round_dir.shard(0)
    shard.create()
    for name in names:
        tmp_path.joinpath(*SHARD, name).write_bytes(b"error: boom\n" if ".err." in name else b"")
    return shard


def test_a_poisoned_task_is_marked_failed_once_and_only_on_a_fresh_look(tmp_path):
    used = ["a.in", "a.claim.1", "a.err.1", "a.claim.2", "a.err.2", "a.claim.3", "a.err.3"]
    shard = round_with(tmp_path, used + ["b.in", "b.claim.1", "b.err.1", "b.claim.2", "b.err.2",
                                         "b.claim.3", "b.err.3"])
    old_view = shard.scan()
    (tmp_path.joinpath(*SHARD) / "b.claim.4").write_bytes(b"")  # a backup won a newer attempt since
    assert shard.mark_poisoned(old_view, 3) == ["a"]
    assert (tmp_path.joinpath(*SHARD) / "a.failed").read_bytes().startswith(b"attempts: 3\nerror: boom")
    assert not (tmp_path.joinpath(*SHARD) / "b.failed").exists()
    assert shard.mark_poisoned(shard.scan(), 3) == []  # marked once


def test_record_failure_marks_the_task_failed_at_the_limit(tmp_path):
    shard = round_with(tmp_path, ["t.in", "t.claim.1", "t.err.1", "t.claim.2"])
    assert shard.record_failure("t", 2, {"error": "again"}, "", 3) == (2, False)
    assert not (tmp_path.joinpath(*SHARD) / "t.failed").exists()
    assert shard.record_failure("t", 3, {"error": "last"}, "Traceback", 3) == (3, True)
    assert b"error: last" in (tmp_path.joinpath(*SHARD) / "t.failed").read_bytes()


def test_a_paced_pass_stopped_while_it_waits_claims_nothing(tmp_path):
    shard = round_with(tmp_path, ["a.in"])
    (tmp_path / "round-000001" / "SEALED").write_bytes(b"")
    wake = threading.Event()
    clock = FakeClock(on_sleep=lambda secs: wake.set())  # a stop request comes while it waits
    pending = PendingTasks(shard, clock, pace=Pace(4.0, clock.now), reuse_secs=5.0, max_attempts=3, wake=wake)
    claimer = Claimer(shard, {"host": "h"}, clock)
    pending.begin_pass()  # lists: a is pending
    (tmp_path.joinpath(*SHARD) / "a.claim.1").write_bytes(b"")  # another worker took a
    (tmp_path.joinpath(*SHARD) / "c.in").write_bytes(b"")  # and c is new: a listing would find it
    clock.advance(0.001)
    pending.begin_pass()  # the queue is fresh: no listing this pass
    assert pending.next_claim(claimer) is None and wake.is_set()
    claimer.close()
    assert sorted(p.name for p in tmp_path.joinpath(*SHARD).glob("*.claim.*")) == ["a.claim.1"]


def sharded_round(tmp_path, shards):
    """Round 1 with ``shards`` ({index: [names]}) written by hand; its RoundDir."""
    round_dir = fsmw.Store(tmp_path).round(1)
    round_dir.create()
    for index, files in shards.items():
        round_dir.shard(index).create()
        for name in files:
            tmp_path.joinpath("round-000001", f"shard-{index:06d}", name).write_bytes(b"")
    return round_dir


def test_a_rounds_shards_are_its_shard_directories_in_order_and_find_looks_in_each(tmp_path):
    round_dir = sharded_round(tmp_path, {10: ["k.in"], 2: ["c.in", "d.in"], 0: ["a.in", "b.in"]})
    for other in ("SEALED", ".journal.h.1.abcd", "shard-1", "shard-0000001", "notes"):
        (tmp_path / "round-000001" / other).write_bytes(b"")
    assert round_dir.shards() == [0, 2, 10]
    assert [s.index for s in round_dir.each_shard()] == [0, 2, 10]
    assert round_dir.find("d").path == str(tmp_path / "round-000001" / "shard-000002")
    assert round_dir.find("k").index == 10 and round_dir.find("a").index == 0
    assert round_dir.find("z") is None
    store = fsmw.Store(tmp_path)
    assert store.task_file(1, "k", "claim", 2) == tmp_path / "round-000001" / "shard-000010" / "k.claim.2"
    assert store.task_file(1, "z", "out") == tmp_path / "round-000001" / "shard-000000" / "z.out"


def test_a_round_written_before_shards_is_one_legacy_shard_in_the_round_directory(tmp_path):
    round_dir = fsmw.Store(tmp_path).round(1)
    round_dir.create()
    for name in ("SEALED", "a.in", "a.claim.1", "b.in"):
        (tmp_path / "round-000001" / name).write_bytes(b"")
    assert round_dir.shards() == [LEGACY]
    (shard,) = round_dir.each_shard()
    assert shard.path == str(tmp_path / "round-000001") and shard.index == LEGACY
    assert round_dir.find("b") is not None and round_dir.find("b").path == shard.path
    assert shard.scan().running() == {"a": 1} and shard.scan().pending() == ["b"]
    assert fsmw.Store(tmp_path).task_file(1, "a", "out") == tmp_path / "round-000001" / "a.out"
    empty = fsmw.Store(tmp_path).round(2)
    empty.create()
    assert empty.shards() == []  # a round whose first shard is not made yet has none


def test_closing_a_round_ends_live_attempts_in_every_shard_but_the_skipped(tmp_path):
    round_dir = sharded_round(tmp_path, {
        0: ["a.in", "a.claim.1", "a.out", "b.in", "b.claim.1", ".tmp.h.1.ab0"],
        1: ["c.in", "c.claim.1", "c.err.1", "c.claim.2", "d.in"],
        2: ["e.in", "e.claim.1"]})
    found = round_dir.close("next: STOP", "the master", skip=frozenset({2}))
    assert (tmp_path / "round-000001" / "CLOSED").read_text() == "next: STOP\n"
    assert [(shard.index, temps, ended) for shard, temps, ended in found] == [
        (0, [".tmp.h.1.ab0"], ["b"]), (1, [], ["c"])]
    shard1 = tmp_path / "round-000001" / "shard-000001"
    assert "the round was closed while attempt 2 ran" in (shard1 / "c.err.2").read_text()
    assert (shard1 / "c.claim.2").read_text().startswith("broken_by: the master\n")  # fenced
    assert (tmp_path / "round-000001" / "shard-000000" / "b.err.1").exists()
    assert not (tmp_path / "round-000001" / "shard-000000" / "a.err.1").exists()  # a has its result
    assert not (tmp_path / "round-000001" / "shard-000002" / "e.err.1").exists()  # skipped
    assert round_dir.shard(1).round_closed() and round_dir.shard(2).round_closed()


def test_the_masters_quick_count_agrees_with_a_full_parse_or_asks_for_one():
    from fsmw._core.view import scan_names
    from fsmw._master.counts import quick_scan
    entries = ["a.in", "a.out", "a.claim.1", "b.in", "b.claim.1", ".tmp.vm.1.ab0", ".worker.vm.1.ab",
               ".journal.vm.1.ab", "c.in", "c.failed", "c.claim.3", "d.in", "d.dup.0abc", "x.in.bak",
               "notes.txt", "e.claim.1.requeued", ".hidden.in", "f.g.in", "f.g.out"]
    quick, claimed = quick_scan(entries)
    full = scan_names(entries)
    assert (quick.inputs, quick.outputs, quick.failed, quick.temps) == \
        (full.inputs, full.outputs, full.failed, full.temps)
    assert claimed and not quick_scan(["a.in", "a.out"])[1]
    assert quick_scan(entries + ["c.err.2"]) == (None, False)  # error records: parse it all
