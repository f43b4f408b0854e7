"""``fsmw requeue --stale`` in one pass: a fake clock stands in for the ``--lease`` seconds of watching.

Round 1 has a dead claim (a claim file nobody touches) and a live one, whose
holder touches it while the command watches (the fake clock's sleep moves its
mtime).  Only the dead one may be broken.
"""

from __future__ import annotations

import argparse
import os

import pytest

from fsmw.cli.repair import requeue_command, requeue_stale
from support.clock import FakeClock
from support.stores import foreign_claim, listing, make_round, names, round_dir

LEASE = 10.0
WATCHING = "watching 2 running claim(s) for 10 s ..."
DEAD = "round 1 dead: claim 1 silent for 10 s (worker 9@elsewhere) -> pending"


def a_dead_and_a_live_claim(root):
    """The store, the dead claim, and a clock whose sleeps are the live holder's heartbeats."""
    store = make_round(root, {"dead": 1, "live": 2})
    dead, live = foreign_claim(store, "dead"), foreign_claim(store, "live")

    def heartbeat(secs):  # the live holder touches its claim: its mtime moves on
        mtime = os.stat(live).st_mtime_ns + int(secs * 1e9)
        os.utime(live, ns=(mtime, mtime))

    return store, dead, FakeClock(on_sleep=heartbeat)


def test_requeue_stale_breaks_the_dead_claim_and_leaves_the_live_one(tmp_path, capsys):
    store, dead, clock = a_dead_and_a_live_claim(tmp_path)
    live = store.task_file(1, "live", "claim", 1)
    live_record = live.read_bytes()
    assert requeue_stale(store, [1], LEASE, False, clock) == 1
    assert clock.slept == [LEASE]  # it watched for the lease, on the clock it was given
    assert capsys.readouterr().out.splitlines() == [WATCHING, DEAD]
    error = store.task_file(1, "dead", "err", 1).read_text()
    assert "requeued by fsmw requeue" in error and "lease expired" in error and "elsewhere" in error
    assert dead.read_text().startswith("broken_by: fsmw requeue\n")  # the break's record took its name
    view = store.round(1).shard(0).scan()
    assert sorted(view.pending()) == ["dead"] and view.next_gen("dead") == 2  # pending again
    assert view.running() == {"live": 1} and live.read_bytes() == live_record
    assert listing(store) == ["dead.claim.1", "dead.err.1", "dead.in", "live.claim.1", "live.in"]
    assert names(round_dir(store.root)) == ["SEALED", "shard-000000"]  # REQUEUED is the command's


@pytest.mark.parametrize("dry_run, verb", [(True, "would requeue"), (False, "requeued")])
def test_requeue_stale_says_what_it_does(tmp_path, capsys, dry_run, verb):
    store, _, clock = a_dead_and_a_live_claim(tmp_path)
    before = listing(store)
    args = argparse.Namespace(store=str(tmp_path), failed=False, stale=True, lease=LEASE, dry_run=dry_run)
    assert requeue_command(args, clock) == 0
    assert capsys.readouterr().out.splitlines() == [WATCHING, DEAD, f"{verb} 1 task(s)"]
    if dry_run:
        assert listing(store) == before
        assert names(round_dir(store.root)) == ["SEALED", "shard-000000"]
    else:
        assert listing(store) == sorted(before + ["dead.err.1"])
        assert names(round_dir(store.root)) == ["REQUEUED", "SEALED", "shard-000000"]
