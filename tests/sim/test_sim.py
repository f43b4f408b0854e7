"""The deterministic simulation (issue 11 item 11): a few hundred schedules, replay, no escape.

``make sim`` runs 10,000 schedules; this runs a few hundred in the fast tier,
checks that a seed replays byte for byte, in this process and from the
command line, that no simulated call reaches the real file system, and
records the real bugs the simulation found on main as strict xfails, each
with its seed (see ``tools/sim/checks.py`` for the properties).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tools.sim.runner import run_many, run_one

ROOT = Path(__file__).resolve().parents[2]
# The real bugs below (strict xfails): reported, not failing, in the other tests.
KNOWN = ("closed-round", "stale-fence-check", "fence-race", "abandoned-claim", "false-takeover")
SEED_WITH_FAULTS = 374  # a crash, freezes, ESTALE, ENOSPC, EIO, EEXIST after a link (1,122 calls)


def cli(*args: str, hash_seed: str = "0") -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONHASHSEED=hash_seed)
    return subprocess.run([sys.executable, "-m", "tools.sim", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.time_limit(60)
def test_a_few_hundred_schedules_break_no_property():
    found = run_many(1, 300, known=KNOWN)
    assert [o.why for o in found["failures"]] == []


def test_the_same_seed_gives_the_same_trace_byte_for_byte():
    first = run_one(SEED_WITH_FAULTS, trace=True, known=KNOWN)
    again = run_one(SEED_WITH_FAULTS, trace=True, known=KNOWN)
    assert "CRASH" in first.trace and "FREEZE" in first.trace and "FAULT" in first.trace
    assert first.trace == again.trace and first.trace.count("\n") > 500


def test_a_seed_replays_with_one_command_whatever_the_shells_hash_seed():
    runs = [cli("--seed", str(SEED_WITH_FAULTS), "-v", "--known", ",".join(KNOWN), hash_seed=h)
            for h in ("random", "12345")]
    assert [r.returncode for r in runs] == [0, 0], runs[0].stderr
    assert runs[0].stdout == runs[1].stdout and "spawn w1" in runs[0].stdout


def test_a_failing_seed_exits_1_and_prints_its_replay_command():
    done = cli("--schedules", "20", "--mutation", "no-recovery")
    assert done.returncode == 1
    first = done.stdout.split(": FAILED: [not-ended]")[0].rpartition("seed ")[2]
    assert first.isdigit(), done.stdout
    assert f"replay: python -m tools.sim --seed {first} --mutation no-recovery -v" in done.stdout


EVENTS = {"open", "os.listdir", "os.scandir", "os.rename", "os.link", "os.remove", "os.mkdir",
          "os.utime", "os.chmod", "os.truncate", "os.chdir"}
_audit = {"on": False, "seen": []}


def _hook(event, args):
    if _audit["on"] and event in EVENTS and threading.current_thread().name.startswith("sim-"):
        if any(str(a).startswith(("/sim", "sim/")) for a in args if isinstance(a, (str, bytes, Path))):
            _audit["seen"].append((event, args[:2]))


sys.addaudithook(_hook)


def test_no_simulated_call_reaches_the_real_file_system():
    """The simulated store exists only in memory: an audit hook sees no real call on its paths,
    and REAL_FS, which raises while a schedule runs, is never reached."""
    _audit["on"], _audit["seen"] = True, []
    try:
        found = run_many(1, 40, known=KNOWN)
    finally:
        _audit["on"] = False
    assert _audit["seen"] == [] and found["failures"] == []


def test_the_audit_would_see_a_call_that_bypassed_the_simulated_file_system(monkeypatch):
    """The check above is not vacuous: a worker that writes its output with the builtin open is seen."""
    from tools.sim.apps import SimWorker

    def leaky(self, input_path, output_path):
        with open(output_path, "wb") as out:  # the real file system: /sim does not exist here
            out.write(b"x")
    monkeypatch.setattr(SimWorker, "process_file", leaky)
    _audit["on"], _audit["seen"] = True, []
    try:
        run_many(1, 3, known=KNOWN)
    finally:
        _audit["on"] = False
    assert _audit["seen"] and _audit["seen"][0][0] == "open"


# -- real bugs found on main (strict xfails: they pass once fixed, and then must lose the mark) --
# Each replays the shortest seed of the first 10,000 that shows it, with the other known bugs set
# aside, so that it fails for its own property only.

def _replays_clean(seed: int, prop: str, *extra: str) -> None:
    others = ",".join(k for k in KNOWN if k != prop)
    done = cli("--seed", str(seed), "--known", others, *extra)
    assert done.returncode == 0, done.stdout


@pytest.mark.xfail(strict=True, reason="RoundDir.break_claim writes the lost attempt's error record, "
                   "then fences its holder: a failure in between (here EIO from close) leaves a claim "
                   "that counts as ended but still points at its holder's inode, and RoundDir.close "
                   "fences only claims without an error record, so the holder, stopped meanwhile, "
                   "publishes into the closed round a task already marked failed. Seed 4769: w1 "
                   "(stopped 12 s at 8.101 s) holds t0.claim.2; w2 writes t0.err.2 at 12.418 s and "
                   "its fence record's close fails with EIO at 12.422 s; t0 is marked failed at "
                   "18.262 s, m1 closes the round at 19.100 s, and w1 links t0.out at 20.112 s")
def test_closed_round_a_break_that_fails_after_its_record_leaves_the_claim_unfenced():
    _replays_clean(4769, "closed-round")


@pytest.mark.xfail(strict=True, reason="Claim.still_mine fences by stat(path).st_ino, which an NFS client "
                   "answers from its lookup cache: for up to acdir after another node renamed a record "
                   "over the claim, the holder still sees its own inode and publishes. Seed 15713 (the "
                   "first of 40,000 seeds): w1, stopped 12 s at 1.812 s, heartbeats at 13.822 s; w3 "
                   "breaks t2.claim.1 at 13.830 s; w1's fence check at 13.841 s gets its own inode from "
                   "its node's cache (acdir 2 s) and it links t2.out at 13.842 s")
def test_stale_fence_check_a_holder_publishes_through_its_lookup_cache():
    _replays_clean(15713, "stale-fence-check")


@pytest.mark.xfail(strict=True, reason="inherent in a check-then-act fence: a holder stopped (SIGSTOP) "
                   "between its fence check and its link publishes on a claim broken meanwhile, so "
                   "attempt.py's 'published by a holder whose claim was live at that moment' overclaims "
                   "(link keeps it to one .out; the other result becomes .dup). Seed 1585: w2's check "
                   "finds t0.claim.1 its own at 2.373 s, w2 is stopped for 8 s at 2.374 s, w1 breaks the "
                   "claim at 7.579 s and w2 links t0.out at 10.374 s")
def test_fence_race_a_holder_frozen_between_check_and_link_publishes():
    _replays_clean(1585, "fence-race")


@pytest.mark.xfail(strict=True, reason="Claim.still_mine takes an ESTALE from its stat for 'the name is "
                   "gone': one transient ESTALE in the heartbeat fences the holder's own live claim. It "
                   "stops heartbeating (and will discard its result as a .dup, 'our claim was broken "
                   "meanwhile', although nobody broke it), and a lease later the claim is broken and "
                   "counted as a failed attempt. Seed 3136: w2's heartbeat stat of t0.claim.1 fails with "
                   "ESTALE at 1.648 s; w1 breaks the claim at 5.883 s, w2 alive and never stopped")
def test_abandoned_claim_one_estale_makes_a_holder_give_up_its_live_claim():
    _replays_clean(3136, "abandoned-claim")


@pytest.mark.xfail(strict=True, reason="issue 11 item 9: a takeover that fails after winning its "
                   "generation (an EIO or ENOSPC in Claimer.take_over's look at the task or in "
                   "RoundDir.break_claim's records) leaves that claim linked to the worker's token, held "
                   "by no attempt and never heartbeat, until a judge breaks it a lease later and counts "
                   "it as a failed attempt. Seed 2042: w3 wins t0.claim.2 at 7.017 s, its lstat of "
                   "t0.out fails with EIO at 7.018 s, and w3 breaks its own orphan claim at 12.485 s")
def test_abandoned_claim_a_failed_takeover_leaves_the_won_claim_behind():
    _replays_clean(2042, "abandoned-claim")


@pytest.mark.xfail(strict=True, reason="issue 11 item 10: with failed calls injected into masters too "
                   "(--master-faults; off in make sim, since on main any of them ends the master), one "
                   "ESTALE on the master's stat of its own store claim stops it with TakenOver: "
                   "Claim.still_mine counts ESTALE as 'the name is gone'. Seed 564: m1's stat of "
                   "master.claim.1 fails with ESTALE at 0.832 s and m1 stops as taken over at 1.067 s, its "
                   "claim still its own")
def test_false_takeover_one_estale_stops_the_master():
    _replays_clean(564, "false-takeover", "--master-faults")
