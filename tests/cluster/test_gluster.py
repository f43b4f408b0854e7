"""fsmw across nodes that share a GlusterFS volume, each through its own FUSE mount.

Default client caching (up to ~1 s of stale attributes, as in production).
Every test gets its own store directory on the volume; the master runs on
node ``master``, workers on ``n1`` and ``n2`` (and on the skewed nodes
``ahead``/``behind`` whose client daemons stamp files 10 minutes off).
Outputs carry the writer's pid; workers record every ``process_file`` call in
a marker directory on local disk, so a test counts executions exactly.
"""

from __future__ import annotations

import os
import random
import signal
import time

import pytest

from support.procs import anywhere, executions, fast_options, faketime_env, wait_for
from support.stores import names, tasks_dir

LEASE = 4.0
MARGIN = 6.0  # a noisy 2-core machine running five FUSE daemons
OPTIONS = fast_options(lease_secs=LEASE, fsync=True, worker_max_idle_secs=120.0)
pytestmark = pytest.mark.time_limit(240)


def stores(nodes, store_name):
    """The same store seen through every node's mount."""
    return {name: node.mount / store_name for name, node in nodes.items()}


def check_exactly_once(result, store, tasks):
    report = result["report"]["1"]
    assert sorted(report["outputs"]) == report["tasks"] == [f"t{i:04d}" for i in range(tasks)]
    assert all(o["ok"] for o in report["outputs"].values()), "an output is wrong or torn"
    # One output per task, each in a shard (round-000001/shard-NNNNNN/), none in the round's own directory.
    outs = anywhere(store, "*.out")
    assert sorted(n.rpartition("/")[2] for n in outs) == [f"t{i:04d}.out" for i in range(tasks)]
    assert all(n.startswith("shard-") for n in outs), outs


def stats(result, markers, tasks):
    runs = sum(len(executions(markers, f"t{i:04d}")) for i in range(tasks))
    return dict(tasks=tasks, executions=runs, duplicates=result["duplicates"])


def test_every_task_published_exactly_once_across_nodes(procs, nodes, store_name, tmp_path, record):
    s = stores(nodes, store_name)
    markers = tmp_path / "markers"
    markers.mkdir()
    started = time.monotonic()
    master = procs.on(nodes["master"]).master(s["master"], OPTIONS, tasks=300)
    workers = [procs.on(nodes[n]).worker(s[n], i, OPTIONS, markers=str(markers))
               for i, n in enumerate(["n1", "n1", "n2", "n2"], start=1)]
    result = master.result(timeout=180)
    for w in workers:
        assert w.wait(60) == 0, w.tail()
    check_exactly_once(result, s["n1"], 300)
    ran = stats(result, markers, 300)
    assert ran["executions"] == 300, "a task ran twice without any failure"
    record("exactly once, 4 workers on 2 nodes", secs=time.monotonic() - started, **ran)


def test_random_sigkills_and_restarts_lose_nothing(procs, nodes, store_name, tmp_path, record):
    s = stores(nodes, store_name)
    markers = tmp_path / "markers"
    markers.mkdir()
    rng = random.Random(7)
    started = time.monotonic()
    behaviour = dict(markers=str(markers), sleep={"*": [0.3]})
    master = procs.on(nodes["master"]).master(s["master"], OPTIONS, tasks=60)
    alive = {i: procs.on(nodes[n]).worker(s[n], i, OPTIONS, **behaviour)
             for i, n in ((1, "n1"), (2, "n2"), (3, "n1"))}
    kills = []
    next_id = 4
    while master.alive() and len(kills) < 4:
        time.sleep(rng.uniform(0.5, 2.0))
        victim_id = rng.choice(sorted(alive))
        victim = alive.pop(victim_id)
        victim.signal(signal.SIGKILL)
        kills.append((victim.pid, time.monotonic()))
        node = "n1" if next_id % 2 else "n2"
        alive[next_id] = procs.on(nodes[node]).worker(s[node], next_id, OPTIONS, **behaviour)
        next_id += 1
    result = master.result(timeout=180)
    check_exactly_once(result, s["n1"], 60)
    recoveries = recovery_times(markers, 60, kills)
    assert all(r < LEASE + MARGIN for r in recoveries), recoveries
    record("random SIGKILLs and restarts", secs=time.monotonic() - started, kills=len(kills),
           recovered=len(recoveries), max_recovery_secs=max(recoveries, default=0),
           **stats(result, markers, 60))


def recovery_times(markers, tasks, kills):
    """For each task a killed worker was running: seconds from kill to its redo starting."""
    killed_at = dict(kills)
    times = []
    for i in range(tasks):
        runs = executions(markers, f"t{i:04d}")
        for run, later in zip(runs, runs[1:]):  # noqa: B905 (3.9 has no strict=)
            if run["pid"] in killed_at and not run["ended"]:
                times.append(later["mono"] - killed_at[run["pid"]])
    return times


def test_a_nodes_client_dies_and_its_task_is_recovered(lab, procs, nodes, store_name, tmp_path, record):
    s = stores(nodes, store_name)
    markers = tmp_path / "markers"
    markers.mkdir()
    gate = tmp_path / "never"
    master = procs.on(nodes["master"]).master(s["master"], OPTIONS, tasks=1)
    doomed = procs.on(nodes["n1"]).worker(s["n1"], 1, OPTIONS, markers=str(markers),
                                          wait={"*": [str(gate), None]})
    wait_for(lambda: executions(markers, "t0000"), 30, "n1's worker to start the task")
    rescuer = procs.on(nodes["n2"]).worker(s["n2"], 2, OPTIONS, markers=str(markers))
    killed = time.monotonic()
    lab.kill_client(nodes["n1"])
    result = master.result(timeout=60)
    recovery = time.monotonic() - killed
    check_exactly_once(result, s["n2"], 1)
    assert result["report"]["1"]["outputs"]["t0000"]["pid"] == rescuer.pid
    assert recovery < LEASE + MARGIN
    assert any("lease expired" in (tasks_dir(s["n2"]) / n).read_text()
               for n in names(tasks_dir(s["n2"]), "t0000.err.*"))
    doomed.signal(signal.SIGKILL)
    record("FUSE client of a node killed", secs=recovery, recoveries=1, tasks=1)


def test_partitioned_worker_is_fenced_and_its_late_result_discarded(lab, procs, nodes, store_name,
                                                                    tmp_path, record):
    s = stores(nodes, store_name)
    markers = tmp_path / "markers"
    markers.mkdir()
    release, hold = tmp_path / "release", tmp_path / "hold"
    # Round 2's tasks wait for `hold`, so the master is still running (and
    # counting) when the cut-off worker's late round-1 result arrives.
    round2 = {"2/t0000": [str(hold)], "2/t0001": [str(hold)]}
    master = procs.on(nodes["master"]).master(s["master"], OPTIONS, tasks=2, rounds=2)
    cut_off = procs.on(nodes["n1"]).worker(
        s["n1"], 1, OPTIONS, markers=str(markers),
        wait=dict(round2, **{"1/t0000": [str(release), None], "1/t0001": [str(release), None]}))
    first = wait_for(lambda: [t for t in ("t0000", "t0001") if executions(markers, t)], 30,
                     "n1's worker to start a task")[0]
    started = time.monotonic()
    lab.partition(nodes["n1"])
    winner = procs.on(nodes["n2"]).worker(s["n2"], 2, OPTIONS, markers=str(markers), wait=round2)
    out = tasks_dir(s["n2"]) / f"{first}.out"
    wait_for(out.exists, LEASE + 30, f"n2 to break the claim and redo {first}")
    recovered = time.monotonic() - started
    lab.heal(nodes["n1"])
    release.touch()  # the cut-off worker finishes its task late
    wait_for(lambda: names(tasks_dir(s["n2"]), f"{first}.dup.*"), 60,
             "the late result to be discarded as a duplicate")
    hold.touch()
    result = master.result(timeout=90)
    assert result["report"]["1"]["outputs"][first]["pid"] == winner.pid
    assert all(o["ok"] for r in ("1", "2") for o in result["report"][r]["outputs"].values())
    assert result["duplicates"] >= 1
    assert cut_off.wait(60) == 0, cut_off.tail()
    record("node partitioned mid-task, healed after the break", secs=recovered, recoveries=1,
           duplicates=result["duplicates"], tasks=4)


def skew_scenario(procs, nodes, s, tmp_path, node, env=None):
    """Two long tasks on skewed workers A and B, watched by an idle true worker.

    A's live claim must survive three leases of watching; B is SIGKILLed and its
    dead claim must be recovered by the watcher within about a lease.
    """
    markers = tmp_path / "markers"
    markers.mkdir()
    report = tmp_path / "time"
    long_task = dict(markers=str(markers), sleep={"*": [3 * LEASE]}, time_report=str(report))
    # The master runs on the skewed node too: its wait must still end.
    master = procs.on(nodes[node]).master(s[node], OPTIONS, tasks=2)
    skewed = [procs.on(nodes[node]).worker(s[node], i, OPTIONS, env=env, **long_task) for i in (1, 2)]
    wait_for(lambda: executions(markers, "t0000") and executions(markers, "t0001"), 60,
             "both skewed workers to start a task")
    seen_skew = float(report.read_text()) - time.time()
    watcher = procs.on(nodes["n1"]).worker(s["n1"], 3, OPTIONS, markers=str(markers))
    time.sleep(1.5 * LEASE)  # let the watcher judge both live claims for a while
    by_pid = {executions(markers, t)[0]["pid"]: t for t in ("t0000", "t0001")}
    victim = skewed[1]
    victim.signal(signal.SIGKILL)
    killed = time.monotonic()
    result = master.result(timeout=120)
    live, dead = by_pid[skewed[0].pid], by_pid[victim.pid]
    assert len(executions(markers, live)) == 1, "a live claim of a skewed worker was broken"
    assert not names(tasks_dir(s["n1"]), f"{live}.err.*")
    redo = executions(markers, dead)
    assert len(redo) == 2 and redo[1]["pid"] == watcher.pid
    recovery = redo[1]["mono"] - killed
    assert recovery < LEASE + MARGIN, recovery
    assert result["report"]["1"]["outputs"][dead]["pid"] == watcher.pid
    assert skewed[0].wait(30) == 0 and watcher.wait(30) == 0
    return result, recovery, seen_skew


@pytest.mark.parametrize("node", ["ahead", "behind"])
def test_node_with_skewed_clock_keeps_live_claims_and_loses_dead_ones(procs, nodes, store_name,
                                                                      tmp_path, node, record):
    s = stores(nodes, store_name)
    probe = s[node].parent / f"{store_name}-probe"
    probe.write_text("x")
    skew = os.stat(probe).st_mtime - time.time()
    probe.unlink()
    assert abs(skew - float(nodes[node].skew)) < 60, f"{node} stamps files {skew:+.0f} s off"
    started = time.monotonic()
    result, recovery, _ = skew_scenario(procs, nodes, s, tmp_path, node)
    record(f"node whose files carry a {nodes[node].skew} s clock", secs=time.monotonic() - started,
           recovery_secs=recovery, tasks=2, recoveries=1, duplicates=result["duplicates"])


@pytest.mark.parametrize("offset, fake_utime", [("+600", False), ("-600", False), ("+600", True)])
def test_worker_processes_with_skewed_clocks(procs, nodes, store_name, tmp_path, offset,
                                             fake_utime, record):
    s = stores(nodes, store_name)
    started = time.monotonic()
    result, recovery, seen = skew_scenario(procs, nodes, s, tmp_path, "n2",
                                           env=faketime_env(offset, fake_utime))
    assert abs(seen - float(offset)) < 60, f"the faked clock is {seen:+.0f} s off, not {offset}"
    record(f"worker processes {offset} s (FAKE_UTIME={int(fake_utime)})",
           secs=time.monotonic() - started, recovery_secs=recovery, tasks=2, recoveries=1,
           duplicates=result["duplicates"])


def test_straggler_backups_and_the_master_wait_end_on_skewed_nodes(procs, nodes, store_name, tmp_path,
                                                                   record):
    s = stores(nodes, store_name)
    markers = tmp_path / "markers"
    markers.mkdir()
    # Backups allowed at once for tasks running over 1 s; first runs take 3 leases, backups 0.1 s.
    options = dict(OPTIONS, lockfile_timeout_threshold=1.0, process_secs=1.0)
    slow_first = dict(markers=str(markers), sleep={"*": [3 * LEASE, 0.1]})
    started = time.monotonic()
    master = procs.on(nodes["behind"]).master(s["behind"], options, tasks=2)
    stragglers = [procs.on(nodes[n]).worker(s[n], i, options, **slow_first)
                  for i, n in ((1, "ahead"), (2, "behind"))]
    wait_for(lambda: executions(markers, "t0000") and executions(markers, "t0001"), 60,
             "both skewed workers to start a task")
    helper = procs.on(nodes["n1"]).worker(s["n1"], 3, options, **slow_first)
    result = master.result(timeout=3 * LEASE + 30)
    secs = time.monotonic() - started
    outputs = result["report"]["1"]["outputs"].values()
    assert result["done"] == 2 and all(o["ok"] for o in outputs)
    # No slow first run published (they take 3 leases): the results are quick copies, the
    # helper's backups, or a backup a straggler started once its keeper made it leave its own
    # task; the helper's first backup is always the first result.
    assert secs < 3 * LEASE, "the round waited for the stragglers instead of their backups"
    assert helper.pid in {o["pid"] for o in outputs}
    for w in stragglers:
        assert w.wait(60) == 0, w.tail()
    dups = wait_for(lambda: len(names(tasks_dir(s["n1"]), "*.dup.*")) >= 2, 30,
                    "the stragglers' slow attempts to be discarded")
    record("straggler backups with skewed master and workers", secs=secs, tasks=2,
           backups=2, duplicates=2 if dups else 0)
