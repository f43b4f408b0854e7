"""The lease judge trusts only its own monotonic clock."""

import os

from fsmw._core.lease import LeaseJudge
from support.clock import FakeClock


def claim_and_judge(tmp_path):
    """A judge on a fake clock, and a claim file for it to watch."""
    clock = FakeClock(1000.0)
    path = tmp_path / "t.claim.1"
    path.write_bytes(b"")
    return clock, LeaseJudge(clock.now), path


def test_unchanged_heartbeat_ages_on_the_judges_clock(tmp_path):
    clock, judge, path = claim_and_judge(tmp_path)
    os.utime(path, (0, 0))  # an mtime decades "old" says nothing by itself
    assert judge.observe("t.claim.1", os.stat(path)).unchanged_secs == 0
    clock.advance(30)
    obs = judge.observe("t.claim.1", os.stat(path))
    assert obs.unchanged_secs == 30 and obs.seen_secs == 30


def test_a_moved_heartbeat_resets_the_age_whatever_its_value(tmp_path):
    clock, judge, path = claim_and_judge(tmp_path)
    judge.observe("t.claim.1", os.stat(path))
    clock.advance(50)
    os.utime(path, (1, 1))  # a skewed host stamps an mtime far in the past
    obs = judge.observe("t.claim.1", os.stat(path))
    assert obs.unchanged_secs == 0 and obs.seen_secs == 50


def test_a_new_file_under_the_same_name_is_a_new_claim(tmp_path):
    clock, judge, path = claim_and_judge(tmp_path)
    judge.observe("t.claim.1", os.stat(path))
    keep = open(path)  # keep the inode alive so the number is not reused
    clock.advance(50)
    os.unlink(path)
    path.write_bytes(b"")
    obs = judge.observe("t.claim.1", os.stat(path))
    keep.close()
    assert obs.seen_secs == 0


def test_forgetting_claims_no_longer_listed():
    judge = LeaseJudge(FakeClock(1000.0).now)
    st = os.stat(".")
    judge.observe("a", st)
    judge.observe("b", st)
    judge.forget_except(["b"])
    assert len(judge) == 1
