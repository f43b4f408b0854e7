"""The deterministic simulation (issue 11 item 11): a few hundred schedules, replay, no escape.

``make sim`` runs 10,000 schedules; this runs a few hundred in the fast tier,
checks that a seed replays byte for byte, in this process and from the
command line, that no simulated call reaches the real file system, and
that the seeds which showed the bugs it found replay clean now (see
``tools/sim/checks.py`` for the properties).
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
# fence-race is inherent in a check-then-act fence (see fsmw/_worker/attempt.py): reported, not failing.
KNOWN = ("fence-race",)
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


# -- bugs the simulation found, now fixed: each seed that showed one replays clean -----------
# The schedules move whenever fsmw changes, so a replay is a regression check of that seed only;
# the 10,000 schedules of `make sim` (every property but fence-race enforced) are the real guard.

FIXED = {
    # a break that failed between its error record and its fence left the claim unfenced, and
    # its stopped holder published into a closed round a task already marked failed
    4769: (),
    # Claim.still_mine answered from the NFS lookup cache: a holder published on a broken claim
    15713: (),
    # one ESTALE in still_mine made a holder give up its own live claim
    3136: (),
    # a takeover that failed after winning its generation left that claim behind (item 9)
    2042: (),
    # sharded rounds: a judge that won a claim in one shard, then failed to list the next (EIO),
    # left the won claim live and run by nobody
    294: (),
    # with faults in masters too: one ESTALE on the master's own claim stopped it as taken over
    564: ("--master-faults",),
}


@pytest.mark.parametrize("seed", sorted(FIXED))
def test_a_seed_that_showed_a_fixed_bug_replays_clean(seed):
    done = cli("--seed", str(seed), "--known", ",".join(KNOWN), *FIXED[seed])
    assert done.returncode == 0, done.stdout
