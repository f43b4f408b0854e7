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
SEED_WITH_FAULTS = 33  # a crash, freezes, ESTALE, ENOSPC, EIO, EEXIST after a link


def cli(*args: str, hash_seed: str = "0") -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONHASHSEED=hash_seed)
    return subprocess.run([sys.executable, "-m", "tools.sim", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.time_limit(60)
def test_a_few_hundred_schedules_break_no_property():
    found = run_many(1, 300, known=KNOWN)
    assert [o.why for o in found["failures"]] == []


def test_the_same_seed_gives_the_same_trace_byte_for_byte():
    first = run_one(SEED_WITH_FAULTS, trace=True)
    again = run_one(SEED_WITH_FAULTS, trace=True)
    assert "CRASH" in first.trace and "FREEZE" in first.trace and "FAULT" in first.trace
    assert first.trace == again.trace and first.trace.count("\n") > 500


def test_a_seed_replays_with_one_command_whatever_the_shells_hash_seed():
    runs = [cli("--seed", str(SEED_WITH_FAULTS), "-v", hash_seed=h) for h in ("random", "12345")]
    assert [r.returncode for r in runs] == [0, 0], runs[0].stderr
    assert runs[0].stdout == runs[1].stdout and "spawn w1" in runs[0].stdout


def test_a_failing_seed_exits_1_and_prints_its_replay_command():
    done = cli("--schedules", "20", "--mutation", "no-recovery")
    assert done.returncode == 1
    assert "seed 1: FAILED: [not-ended]" in done.stdout
    assert "replay: python -m tools.sim --seed 1 --mutation no-recovery -v" in done.stdout


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


@pytest.mark.xfail(strict=True, reason="issue 11 item 3: a worker that has not looked at CLOSED yet "
                   "(it looks once a second) claims a task of an abandoned round after CLOSED and "
                   "publishes its .out there. Seed 243 (157 calls, crashes only): m2 restarts, writes "
                   "round 1's CLOSED at 2.572 s and fences w2's t0.claim.1 at 2.587 s; w2 wins "
                   "t0.claim.2 at 2.612 s and links t0.out at 2.675 s")
def test_closed_round_a_task_claimed_after_closed_is_published():
    _replays_clean(243, "closed-round")


@pytest.mark.xfail(strict=True, reason="a master that crashes between writing CLOSED and fencing the "
                   "round's live claims leaves them unfenced for good: the next master closes only rounds "
                   "without CLOSED. Seed 6764: m2 writes round 1's CLOSED at 4.051 s and crashes at "
                   "4.054 s; w1's t0.claim.1 is never fenced and w1 links t0.out at 6.058 s")
def test_closed_round_a_master_crash_while_closing_leaves_claims_unfenced():
    _replays_clean(6764, "closed-round")


@pytest.mark.xfail(strict=True, reason="Claim.still_mine fences by stat(path).st_ino, which an NFS client "
                   "answers from its lookup cache: for up to acdir after another node renamed a record "
                   "over the claim, the holder still sees its own inode and publishes. Seed 7976: m2 "
                   "fences w2's t3.claim.2 at 7.364 s (closing round 1); w2's fence check at 7.678 s "
                   "gets its own inode from its node's cache and it links t3.out at 7.679 s")
def test_stale_fence_check_a_holder_publishes_through_its_lookup_cache():
    _replays_clean(7976, "stale-fence-check")


@pytest.mark.xfail(strict=True, reason="inherent in a check-then-act fence: a holder stopped (SIGSTOP) "
                   "between its fence check and its link publishes on a claim broken meanwhile, so "
                   "attempt.py's 'published by a holder whose claim was live at that moment' overclaims "
                   "(link keeps it to one .out; the other result becomes .dup). Seed 6373: w1's check "
                   "finds t2.claim.1 its own, w1 freezes for 10 s at 0.494 s, m4 fences the claim at "
                   "8.321 s and w1 links t2.out at 10.494 s")
def test_fence_race_a_holder_frozen_between_check_and_link_publishes():
    _replays_clean(6373, "fence-race")


@pytest.mark.xfail(strict=True, reason="Claim.still_mine takes an ESTALE from its stat for 'the name is "
                   "gone': one transient ESTALE in the heartbeat fences the holder's own live claim. It "
                   "stops heartbeating, discards its finished result as a .dup ('our claim was broken "
                   "meanwhile') although nobody broke it, and a lease later the claim is broken and "
                   "counted as a failed attempt. Seed 2107: w1's heartbeat stat of t0.claim.1 fails with "
                   "ESTALE at 0.845 s; w1 writes t0.dup at 2.057 s and breaks its own claim at 6.591 s")
def test_abandoned_claim_one_estale_makes_a_holder_give_up_its_live_claim():
    _replays_clean(2107, "abandoned-claim")


@pytest.mark.xfail(strict=True, reason="issue 11 item 9: a takeover whose break records cannot be "
                   "written (EIO, ENOSPC in RoundDir.break_claim) leaves the generation it just won "
                   "linked to the worker's token, held by no attempt and never heartbeat, until a judge "
                   "breaks it a lease later and counts it as a failed attempt. Seed 5139: w2 wins "
                   "t0.claim.2 at 11.760 s to break t0.claim.1, opening its error record fails with EIO "
                   "at 11.773 s, and w2 breaks its own orphan t0.claim.2 at 17.660 s")
def test_abandoned_claim_a_failed_break_leaves_the_won_claim_behind():
    _replays_clean(5139, "abandoned-claim")


@pytest.mark.xfail(strict=True, reason="issue 11 item 10: with failed calls injected into masters too "
                   "(--master-faults; off in make sim, since on main any of them ends the master), one "
                   "ESTALE on the master's stat of its own store claim stops it with TakenOver: "
                   "Claim.still_mine counts ESTALE as 'the name is gone'. Seed 5: m1's stat of "
                   "master.claim.1 fails with ESTALE at 12.767 s and m1 stops as taken over, its claim "
                   "still its own")
def test_false_takeover_one_estale_stops_the_master():
    _replays_clean(5, "false-takeover", "--master-faults")
