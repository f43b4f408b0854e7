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
KNOWN = ("closed-round", "stale-fence-check", "abandoned-claim")
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
    assert "replay: python -m tools.sim --seed 2 --mutation no-recovery -v" in done.stdout


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

def _replays_clean(seed: int, others: str) -> None:
    """Replay ``seed`` (with the other known bug ``others`` set aside): it must break nothing."""
    done = cli("--seed", str(seed), "--known", others)
    assert done.returncode == 0, done.stdout


@pytest.mark.xfail(strict=True, reason="issue 11 item 3: a worker that has not looked at CLOSED yet "
                   "(it looks once a second) claims a task of an abandoned round after CLOSED and "
                   "publishes its .out there. Seed 243 (157 calls, crashes only): m2 restarts, writes "
                   "round 1's CLOSED at 2.572 s and fences w2's t0.claim.1 at 2.587 s; w2 wins "
                   "t0.claim.2 at 2.612 s and links t0.out at 2.675 s")
def test_closed_round_a_task_claimed_after_closed_is_published():
    _replays_clean(243, "stale-fence-check,abandoned-claim")


@pytest.mark.xfail(strict=True, reason="a master that crashes between writing CLOSED and fencing the "
                   "round's live claims leaves them unfenced for good: the next master closes only rounds "
                   "without CLOSED. Seed 1606: m2 writes CLOSED at 4.820 s and crashes at 4.828 s; w2's "
                   "t1.claim.1 is never fenced and t1.out appears at 6.075 s")
def test_closed_round_a_master_crash_while_closing_leaves_claims_unfenced():
    _replays_clean(1606, "stale-fence-check,abandoned-claim")


@pytest.mark.xfail(strict=True, reason="Claim.still_mine fences by stat(path).st_ino, which an NFS client "
                   "answers from its lookup cache: for up to acdir after another node renamed a break "
                   "record over the claim, the holder still sees its own inode and publishes. Seed 154: "
                   "m2 fences t2.claim.1 at 6.107 s; w3 on node1 (acdir 0.5 s) stats it at 6.159 s, "
                   "gets its own inode and links t2.out at 6.160 s")
def test_stale_fence_check_a_holder_publishes_through_its_lookup_cache():
    _replays_clean(154, "closed-round,abandoned-claim")


@pytest.mark.xfail(strict=True, reason="issue 11 items 6 and 10: with failed calls injected into masters "
                   "too (--master-faults; off in make sim), a master ends at a single fault and every "
                   "restart abandons the round. Seed 33: 38 masters die before the 400 s bound, 16 of them "
                   "of TakenOver after one ESTALE on their own claim's stat (Claim.still_mine counts "
                   "ESTALE as 'the name is gone'), 13 of ENOSPC and 5 of EIO while writing inputs or "
                   "markers, 3 of 'store is not a directory' (Store.check's is_dir on an ESTALE), 1 of "
                   "an EIO while listing")
def test_not_ended_a_master_with_failed_calls_ends_and_restarts_forever():
    done = cli("--seed", "33", "--master-faults", "--known", ",".join(KNOWN))
    assert done.returncode == 0, done.stdout


@pytest.mark.xfail(strict=True, reason="Claim.still_mine takes an ESTALE from its stat for 'the name is "
                   "gone': one transient ESTALE in the heartbeat fences the holder's own live claim. It "
                   "stops heartbeating, discards its finished result as a .dup ('our claim was broken "
                   "meanwhile') although nobody broke it, and a lease later the claim is broken and "
                   "counted as a failed attempt. Seed 130: w3's heartbeat stat of t5.claim.1 fails with "
                   "ESTALE at 17.006 s; w3 writes t5.dup at 20.083 s and breaks its own claim at 24.205 s")
def test_abandoned_claim_one_estale_makes_a_holder_give_up_its_live_claim():
    _replays_clean(130, "closed-round,stale-fence-check")


@pytest.mark.xfail(strict=True, reason="issue 11 item 9: a takeover whose break records cannot be "
                   "written (EIO, ENOSPC in RoundDir.break_claim) leaves the generation it just won "
                   "linked to the worker's token, held by no attempt and never heartbeat, until a judge "
                   "breaks it a lease later and counts it as a failed attempt. Seed 44: w1 wins "
                   "t1.claim.2 at 18.415 s to break t1.claim.1, its error record's fsync fails with EIO "
                   "at 18.424 s, and w1 breaks its own orphan t1.claim.2 at 24.896 s")
def test_abandoned_claim_a_failed_break_leaves_the_won_claim_behind():
    _replays_clean(44, "closed-round,stale-fence-check")
