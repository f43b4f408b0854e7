"""Multi-process tests: a real master and real workers (OS processes) on a real store.

The programs are the test apps in ``tests/support/apps``: a configurable worker, master and reader.
Workers record every ``process_file`` call as a marker file, so a test can count
executions; outputs carry the writer's pid and a checksum.  Every wait has a
deadline, and the ``procs`` fixture kills and reaps every child afterwards.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from fsmw import ExitCode
from support.procs import anywhere, execution, executions, fast_options, faketime_env, shard_dirs, wait_for
from support.stores import names, round_dir, tasks_dir

STOPPED, ERROR, IDLE_TIMEOUT, INTERRUPTED = (int(c) for c in (
    ExitCode.STOPPED, ExitCode.ERROR, ExitCode.IDLE_TIMEOUT, ExitCode.INTERRUPTED))
MARGIN = 3.0  # seconds of slack for a shared, noisy 2-core machine


def all_ok(result: dict, rnd: int = 1) -> bool:
    report = result["report"][str(rnd)]
    return sorted(report["outputs"]) == report["tasks"] and \
        all(o["ok"] for o in report["outputs"].values())


def output_pid(result: dict, task: str, rnd: int = 1) -> int:
    return result["report"][str(rnd)]["outputs"][task]["pid"]


def assert_exits(procs_list, code: int, timeout: float = 20.0) -> None:
    for proc in procs_list:
        got = proc.wait(timeout)
        assert got == code, f"{proc.name} exited with {got}, expected {code}\n{proc.tail()}"


def test_end_to_end_200_tasks_three_workers(procs, tmp_path):
    store = tmp_path / "store"
    options = fast_options(fsync=True, lockfile_timeout_threshold=0.05)
    master = procs.master(store, options, tasks=200)
    workers = [procs.worker(store, i, options) for i in (1, 2, 3)]

    result = master.result(timeout=60)
    assert_exits(workers, STOPPED)

    assert result["done"] == 200 and result["failed"] == [] and result["rounds"] == 1
    assert all_ok(result)
    assert shard_dirs(store) == [tasks_dir(store)]
    listing = names(tasks_dir(store))
    assert [n for n in listing if n.endswith(".out")] == [f"t{i:04d}.out" for i in range(200)]
    assert "CLOSED" in names(round_dir(store)) and "STOP" in names(store)
    assert anywhere(store, ".tmp.*") == []


def test_racing_claims_each_task_runs_once(procs, tmp_path):
    store, markers, go = tmp_path / "store", tmp_path / "markers", tmp_path / "go"
    markers.mkdir()
    options = fast_options()
    master = procs.master(store, options, tasks=16)
    wait_for((round_dir(store) / "SEALED").exists, 20, "the master to seal round 1")
    workers = [procs.worker(store, i, options, markers=markers, ready=tmp_path / f"ready{i}",
                            barrier=go, sleep={"*": [0.3]}) for i in range(1, 9)]
    wait_for(lambda: all((tmp_path / f"ready{i}").exists() for i in range(1, 9)), 30,
             "all 8 workers at the start line")
    go.touch()

    result = master.result(timeout=40)
    assert_exits(workers, STOPPED)

    assert result["done"] == 16 and all_ok(result)
    for i in range(16):
        runs = executions(markers, f"t{i:04d}")
        assert len(runs) == 1, f"t{i:04d} ran {len(runs)} times: {runs}"
    assert len(names(tasks_dir(store), "*.out")) == 16
    assert [n for n in anywhere(store) if ".err." in n or ".dup." in n] == []


def test_sigkill_mid_task_is_recovered_within_the_lease(procs, tmp_path):
    store, markers = tmp_path / "store", tmp_path / "markers"
    markers.mkdir()
    lease = 2.0
    options = fast_options(lease_secs=lease)
    master = procs.master(store, options, tasks=1)
    # The first execution of t0000 never ends by itself; the second is quick.
    hold = {"t0000": [str(tmp_path / "never"), None]}
    workers = [procs.worker(store, i, options, markers=markers, wait=hold) for i in (1, 2)]
    first = wait_for(lambda: execution(markers, "t0000", 1), 20, "a worker to start t0000")
    victim = procs.by_pid(first["pid"])
    survivor = next(w for w in workers if w is not victim)
    survivor.wait_log("working on round-000001", 20)  # it is idle and watching the claim

    victim.crash()  # the worker and its keeper: only the lease tells (a lone worker: test_keeper.py)
    killed_at = time.monotonic()
    assert victim.wait(5) == -signal.SIGKILL
    out = tasks_dir(store) / "t0000.out"
    wait_for(out.exists, lease + 15, "t0000.out after the kill")
    recovery = time.monotonic() - killed_at

    result = master.result(timeout=20)
    assert_exits([survivor], STOPPED)
    assert recovery < lease + MARGIN, f"recovery took {recovery:.1f} s with lease {lease} s"
    assert output_pid(result, "t0000") == survivor.pid and all_ok(result)
    assert "lease expired" in (tasks_dir(store) / "t0000.err.1").read_text()
    assert [e["pid"] for e in executions(markers, "t0000")] == [victim.pid, survivor.pid]


@pytest.mark.time_limit(90)
@pytest.mark.parametrize("new_owner_first", [True, False],
                         ids=["new-owner-publishes-first", "hung-worker-resumes-first"])
def test_hung_worker_resumed_late_does_not_replace_the_result(procs, tmp_path, new_owner_first):
    store, markers = tmp_path / "store", tmp_path / "markers"
    markers.mkdir()
    release, finish, hold = (tmp_path / n for n in ("release", "finish", "hold"))
    options = fast_options(lease_secs=1.5)
    # Execution 1 of t0000 waits for `release`, execution 2 for `finish`; the
    # master keeps the round open until `hold` exists.
    master = procs.master(store, options, tasks=1, hold=hold)
    wait = {"t0000": [str(release), str(finish), None]}
    workers = [procs.worker(store, i, options, markers=markers, wait=wait) for i in (1, 2)]
    rd = tasks_dir(store)

    hung = procs.by_pid(wait_for(lambda: execution(markers, "t0000", 1), 20, "t0000 to start")["pid"])
    hung.signal(signal.SIGSTOP)  # frozen: its keeper does not keep it alive
    second = wait_for(lambda: execution(markers, "t0000", 2), 20, "a worker to break the hung claim")
    assert "lease expired" in (rd / "t0000.err.1").read_text()
    new_claim = rd / "t0000.claim.2"
    new_ino = new_claim.stat().st_ino

    if new_owner_first:
        finish.touch()
        wait_for((rd / "t0000.out").exists, 20, "the new owner's t0000.out")
    # Resumed, the hung worker's keeper finds its claim fenced: the worker leaves the task
    # by itself (nobody touches `release`), records why, and goes on; it never publishes.
    hung.signal(signal.SIGCONT)
    hung.wait_log("is no longer ours (broken by another worker", 20)
    dup = wait_for(lambda: names(rd, "t0000.dup.*"), 20, "a .dup record of the abandoned attempt")
    record = (rd / dup[0]).read_text()
    assert "reason: abandoned: our claim was broken meanwhile" in record, record
    assert f"pid: {hung.pid}" in record and "attempt: 1" in record
    assert new_claim.stat().st_ino == new_ino, "the resumed worker touched the new owner's claim"
    assert not executions(markers, "t0000")[0]["ended"]
    if not new_owner_first:
        assert not (rd / "t0000.out").exists(), "a fenced worker published its result"
        finish.touch()
        wait_for((rd / "t0000.out").exists, 20, "the new owner's t0000.out")
    release.touch()
    hold.touch()

    result = master.result(timeout=20)
    assert_exits(workers, STOPPED)  # the resumed worker went on working: STOP ends it
    assert output_pid(result, "t0000") == second["pid"] != hung.pid and all_ok(result)
    assert result["duplicates"] == 1 and result["done"] == 1
    assert len(executions(markers, "t0000")) == 2
    assert names(rd, "t0000.err.*") == ["t0000.err.1"] and not anywhere(store, ".tmp.*")


def test_backup_copy_of_a_straggler_first_result_wins(procs, tmp_path):
    store, markers, release = tmp_path / "store", tmp_path / "markers", tmp_path / "release"
    markers.mkdir()
    # Idle workers start a backup of a task running longer than process_secs.
    options = fast_options(process_secs=0.5, lockfile_timeout_threshold=1.0)
    hold = tmp_path / "hold"  # the master keeps the round open until this exists
    master = procs.master(store, options, tasks=1, hold=hold)
    wait = {"t0000": [str(release), None]}
    workers = [procs.worker(store, i, options, markers=markers, wait=wait) for i in (1, 2)]
    rd = tasks_dir(store)

    slow = procs.by_pid(wait_for(lambda: execution(markers, "t0000", 1), 20, "t0000 to start")["pid"])
    backup = wait_for(lambda: execution(markers, "t0000", 2), 20, "a backup copy of t0000")
    wait_for((rd / "t0000.out").exists, 20, "the backup's t0000.out")
    winner = (rd / "t0000.out").read_bytes()
    # The original's result is no longer needed: its keeper sees t0000.out and the
    # worker leaves the task (nobody touches `release`), leaving a .dup record.
    dup = wait_for(lambda: names(rd, "t0000.dup.*"), 20, "a .dup record of the abandoned original")
    record = (rd / dup[0]).read_text()
    assert "reason: abandoned: a result was already published" in record and f"pid: {slow.pid}" in record
    assert not executions(markers, "t0000")[0]["ended"]
    release.touch()
    hold.touch()

    result = master.result(timeout=20)
    assert_exits(workers, STOPPED)
    assert (rd / "t0000.out").read_bytes() == winner, "the second result replaced the first"
    assert output_pid(result, "t0000") == backup["pid"] != slow.pid and all_ok(result)
    assert names(rd, "t0000.err.*") == [] and len(executions(markers, "t0000")) == 2
    assert result["duplicates"] == 1


def clock_offset(report: Path) -> float:
    """How far ahead of ours the clock was that a worker wrote into ``report``."""
    text = wait_for(lambda: report.exists() and report.read_text(), 20, f"{report.name}")
    return float(text) - time.time()


def sealed_round(procs, tmp_path, lease: float, tasks: int = 2):
    """A master whose round of ``tasks`` is sealed; returns store, markers, options, master."""
    store, markers = tmp_path / "store", tmp_path / "markers"
    markers.mkdir()
    options = fast_options(lease_secs=lease)
    master = procs.master(store, options, tasks=tasks)
    wait_for((round_dir(store) / "SEALED").exists, 20, "round 1 to be sealed")
    return store, markers, options, master


@pytest.mark.parametrize("fake_utime", [False, True], ids=["utime-real", "FAKE_UTIME=1"])
def test_clock_skew_does_not_break_live_claims(procs, tmp_path, fake_utime):
    lease = 1.5
    store, markers, options, master = sealed_round(procs, tmp_path, lease)
    # Workers 1 and 2 (clocks 10 minutes ahead and behind) hold their claims...
    enough = tmp_path / "enough"
    holders = [procs.worker(store, i, options, env=faketime_env(offset, fake_utime),
                            markers=markers, time_report=tmp_path / f"time{i}",
                            wait={"*": [str(enough)]})
               for i, offset in ((1, "+600"), (2, "-600"))]
    starts = [wait_for(lambda t=t: execution(markers, t, 1), 20, f"{t} to start")
              for t in ("t0000", "t0001")]
    assert {s["pid"] for s in starts} == {w.pid for w in holders}
    # ...while idle workers judge them: 3 with the true clock, 4 with a clock 10 minutes ahead.
    watchers = [procs.worker(store, 3, options, markers=markers),
                procs.worker(store, 4, options, env=faketime_env("+600", fake_utime),
                             markers=markers, time_report=tmp_path / "time4")]
    for w in watchers:
        w.wait_log("working on round-000001", 20)
    watching_since = time.monotonic()
    for i, skew in ((1, 600), (2, -600), (4, 600)):
        assert abs(clock_offset(tmp_path / f"time{i}") - skew) < 30, "libfaketime had no effect"
    time.sleep(3 * lease)  # the span under test: three leases of judging live claims
    enough.touch()

    result = master.result(timeout=30)
    assert_exits(holders + watchers, STOPPED)
    ends = [json.loads(Path(markers, f"1.{t}.exec.1.end").read_text())["mono"]
            for t in ("t0000", "t0001")]
    assert min(ends) - watching_since > 3 * lease
    assert anywhere(store, "*.err.*") == [] and result["duplicates"] == 0
    assert [len(executions(markers, t)) for t in ("t0000", "t0001")] == [1, 1]
    assert {output_pid(result, t) for t in ("t0000", "t0001")} == {w.pid for w in holders}


@pytest.mark.parametrize("watcher_offset", [None, "-600"], ids=["watcher-true-clock",
                                                                "watcher-600s-behind"])
def test_clock_skew_dead_claims_are_recovered(procs, tmp_path, watcher_offset):
    lease = 1.5
    store, markers, options, master = sealed_round(procs, tmp_path, lease)
    hold = {"*": [str(tmp_path / "never"), None]}
    skewed = [procs.worker(store, i, options, env=faketime_env(offset), markers=markers,
                           time_report=tmp_path / f"time{i}", wait=hold)
              for i, offset in ((1, "+600"), (2, "-600"))]
    assert abs(clock_offset(tmp_path / "time1") - 600) < 30
    assert abs(clock_offset(tmp_path / "time2") + 600) < 30
    for t in ("t0000", "t0001"):
        wait_for(lambda t=t: execution(markers, t, 1), 20, f"{t} to start")
    env = faketime_env(watcher_offset) if watcher_offset else None
    watcher = procs.worker(store, 3, options, env=env, markers=markers)
    watcher.wait_log("working on round-000001", 20)

    for w in skewed:
        w.crash()  # with their keepers: the lease judges
    killed_at = time.monotonic()
    outs = [tasks_dir(store) / f"t000{i}.out" for i in (0, 1)]
    wait_for(lambda: all(o.exists() for o in outs), 2 * lease + 20, "both tasks recovered")
    recovery = time.monotonic() - killed_at

    result = master.result(timeout=20)
    assert_exits([watcher], STOPPED)
    # The watcher redoes the two tasks one after the other.
    assert recovery < lease + 2 * MARGIN, f"recovery took {recovery:.1f} s with lease {lease} s"
    assert {output_pid(result, t) for t in ("t0000", "t0001")} == {watcher.pid}
    for t in ("t0000", "t0001"):
        assert "lease expired" in (tasks_dir(store) / f"{t}.err.1").read_text()


def test_failing_tasks_get_max_attempts_records_then_fail(procs, tmp_path):
    store, markers = tmp_path / "store", tmp_path / "markers"
    markers.mkdir()
    # A long lease lets workers reuse a listing while they work through it (the
    # listing is then out of date: other workers have meanwhile run t0002).
    options = fast_options(max_attempts=3, lease_secs=10.0)
    master = procs.master(store, options, tasks=24)
    behaviour = dict(markers=markers, fail={"t0002": 99, "t0004": 1},
                     sleep={"t0002": [0], "t0004": [0], "*": [0.1]}, barrier=tmp_path / "go")
    workers = [procs.worker(store, i, options, ready=tmp_path / f"ready{i}", **behaviour)
               for i in (1, 2, 3)]
    wait_for(lambda: all((tmp_path / f"ready{i}").exists() for i in (1, 2, 3)), 30, "workers up")
    wait_for((round_dir(store) / "SEALED").exists, 20, "round 1 to be sealed")
    (tmp_path / "go").touch()  # all workers start on the complete round at once

    result = master.result(timeout=40)
    assert_exits(workers, STOPPED)

    rd = tasks_dir(store)
    records = names(rd, "t0002.err.*")
    assert len(records) == 3, records
    for name in records:
        text = (rd / name).read_text()
        for needle in ("Traceback", "host: ", "worker_id: ", "attempt: ", "duration_secs: ",
                       "RuntimeError: boom: task t0002"):
            assert needle in text, f"{name} lacks {needle!r}:\n{text}"
    attempts = sorted(int(line.split(":")[1]) for name in records
                      for line in (rd / name).read_text().splitlines() if line.startswith("attempt:"))
    assert attempts == [1, 2, 3], f"attempt numbers in the error records: {attempts}"
    assert (rd / "t0002.failed").exists() and not (rd / "t0002.out").exists()
    assert len(executions(markers, "t0002")) == 3
    assert [(f[0], f[1]) for f in result["failed"]] == [(1, "t0002")]
    assert "boom: task t0002" in result["failed"][0][2]
    assert names(rd, "t0004.err.*") == ["t0004.err.1"] and len(executions(markers, "t0004")) == 2
    assert result["done"] == 23 and sorted(result["report"]["1"]["outputs"]) == \
        [f"t{i:04d}" for i in range(24) if i != 2]
    assert all(o["ok"] for o in result["report"]["1"]["outputs"].values())


def test_workers_exit_0_on_the_stop_file(procs, tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    workers = [procs.worker(store, i, fast_options(), ready=tmp_path / f"ready{i}")
               for i in (1, 2)]
    wait_for(lambda: all((tmp_path / f"ready{i}").exists() for i in (1, 2)), 20, "workers up")
    (store / "STOP").write_text("stop\n")
    assert_exits(workers, STOPPED, timeout=20)


def test_worker_without_master_exits_3_after_the_idle_limit(procs, tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    started = time.monotonic()
    worker = procs.worker(store, 1, fast_options(worker_max_idle_secs=1.5))
    assert_exits([worker], IDLE_TIMEOUT, timeout=20)
    assert 1.5 <= time.monotonic() - started < 1.5 + 10


def test_worker_with_missing_store_parent_exits_1_naming_the_path(procs, tmp_path):
    store = tmp_path / "no-such-dir" / "store"
    started = time.monotonic()
    worker = procs.worker(store, 1, fast_options(worker_max_idle_secs=60))
    assert_exits([worker], ERROR, timeout=15)
    assert time.monotonic() - started < 10
    assert str(store) in worker.text() and "does not exist" in worker.text()


def test_sigterm_releases_the_claim_and_another_worker_does_the_task(procs, tmp_path):
    store, markers = tmp_path / "store", tmp_path / "markers"
    markers.mkdir()
    options = fast_options()
    master = procs.master(store, options, tasks=1)
    hold = {"t0000": [str(tmp_path / "never"), None]}
    first = procs.worker(store, 1, options, markers=markers, wait=hold)
    wait_for(lambda: execution(markers, "t0000", 1), 20, "worker 1 to start t0000")

    first.signal(signal.SIGTERM)
    assert_exits([first], INTERRUPTED, timeout=10)
    rd = tasks_dir(store)
    assert names(rd, "t0000.*") == ["t0000.in"], "claim, output or error left behind"
    assert anywhere(store, ".tmp.*") == []

    second = procs.worker(store, 2, options, markers=markers, wait=hold)
    result = master.result(timeout=20)
    assert_exits([second], STOPPED)
    assert output_pid(result, "t0000") == second.pid and all_ok(result)
    assert names(rd, "t0000.err.*") == []
    assert [e["ended"] for e in executions(markers, "t0000")] == [False, True]


@pytest.mark.time_limit(90)
def test_two_rounds_and_a_late_round_1_result(procs, tmp_path):
    store, markers = tmp_path / "store", tmp_path / "markers"
    markers.mkdir()
    release, gate = tmp_path / "release", tmp_path / "gate"
    options = fast_options(lease_secs=1.5)
    master = procs.master(store, options, tasks=6, rounds=2)
    # Round 1's t0003 hangs on its first execution; round 2's t0005 waits for `gate`.
    # (Two workers: one judge for the hung claim; many judges are tested elsewhere.)
    wait = {"1/t0003": [str(release), None], "2/t0005": [str(gate)]}
    workers = [procs.worker(store, i, options, markers=markers, wait=wait) for i in (1, 2)]

    late = procs.by_pid(wait_for(lambda: execution(markers, "t0003", 1), 20, "t0003 to start")["pid"])
    late.signal(signal.SIGSTOP)
    wait_for((round_dir(store, 1) / "CLOSED").exists, 30, "round 1 to close")
    assert (round_dir(store, 2) / "SEALED").exists()
    release.touch()
    late.signal(signal.SIGCONT)
    wait_for(lambda: names(tasks_dir(store, 1), "t0003.dup.*"), 20, "the late round-1 result")
    gate.touch()

    result = master.result(timeout=30)
    assert_exits(workers, STOPPED)
    assert result["rounds"] == 2 and result["done"] == 12 and result["failed"] == []
    assert all_ok(result, 1) and all_ok(result, 2)
    assert result["report"]["1"]["tasks"] == result["report"]["2"]["tasks"]
    assert output_pid(result, "t0003", 1) != late.pid
    assert len(executions(markers, "t0003", rnd=1)) == 2
    assert len(executions(markers, "t0003", rnd=2)) == 1
    assert not anywhere(store, "*.dup.*", 2)
    assert not anywhere(store, ".tmp.*", 1) + anywhere(store, ".tmp.*", 2)


def test_concurrent_reader_never_sees_a_partial_file(procs, tmp_path):
    store, until = tmp_path / "store", tmp_path / "until"
    report = tmp_path / "reader.json"
    reader = procs.program("reader", "reader.py", dict(store=store, until=until, report=report))
    options = fast_options(shard_size=5)  # 3 shards: the reader looks into each
    mb = 1024 * 1024
    master = procs.master(store, options, tasks=12, in_bytes=[mb, 4 * mb])
    workers = [procs.worker(store, i, options, out_bytes=[mb, 4 * mb], slow_write=True)
               for i in (1, 2)]

    result = master.result(timeout=60)
    assert_exits(workers, STOPPED)
    until.touch()
    assert reader.wait(30) == 0, reader.tail()
    seen = json.loads(report.read_text())
    assert seen["torn"] == [], seen["torn"][:5]
    assert seen["replaced"] == [], seen["replaced"][:5]
    assert seen["in"] == 12 and seen["out"] == 12 and seen["passes"] > 12
    assert len(shard_dirs(store)) == 3
    assert result["done"] == 12 and all_ok(result)


def test_use_tmp_publishes_into_the_store_and_empties_scratch(procs, tmp_path):
    store, markers, scratch = tmp_path / "store", tmp_path / "markers", tmp_path / "scratch"
    markers.mkdir()
    scratch.mkdir()
    options = fast_options(use_tmp=True, tmp_folder=str(scratch))
    master = procs.master(store, options, tasks=20, in_bytes=[1000, 50000])
    workers = [procs.worker(store, i, options, markers=markers, out_bytes=[1000, 50000])
               for i in (1, 2)]

    result = master.result(timeout=40)
    assert_exits(workers, STOPPED)
    assert result["done"] == 20 and all_ok(result)
    for i in range(20):
        (run,) = executions(markers, f"t{i:04d}")
        assert run["input"].startswith(str(scratch)) and run["output"].startswith(str(scratch))
    assert os.listdir(scratch) == []
    assert anywhere(store, ".tmp.*") == []


def test_unparsable_input_fails_that_task_only(procs, tmp_path):
    store = tmp_path / "store"
    options = fast_options(max_attempts=2)
    master = procs.master(store, options, tasks=8, bad=["t0003"])
    workers = [procs.worker(store, i, options) for i in (1, 2)]

    result = master.result(timeout=40)
    assert_exits(workers, STOPPED)
    rd = tasks_dir(store)
    assert result["done"] == 7 and [(f[0], f[1]) for f in result["failed"]] == [(1, "t0003")]
    assert "t0003.in" in result["failed"][0][2]
    assert len(names(rd, "t0003.err.*")) == 2 and (rd / "t0003.failed").exists()
    assert all(str(rd / "t0003.in") in (rd / n).read_text() for n in names(rd, "t0003.err.*"))
    assert all(o["ok"] for o in result["report"]["1"]["outputs"].values())


def test_foreign_files_are_ignored(procs, tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    foreign = ["notes.txt", "x.in.bak", "README", ".nfs000000000123", "round-abc", "shard-abc",
               "t0001.in.orig", "t0002.err.abc", "zzz.out", "SEALED.txt", "notes.dup.txt"]
    for name in foreign:
        (store / name).write_text("not fsmw's\n")
    (store / "round-999").mkdir()
    options = fast_options()
    master = procs.master(store, options, tasks=8, in_bytes=[0, 100])
    rd, shard = round_dir(store), tasks_dir(store)
    wait_for(shard.exists, 20, "round 1 and its first shard to appear")
    # Foreign files in the round's own directory (markers, shards) and in the shard (task files).
    for name in foreign:
        (rd / name).write_text("not fsmw's\n")
        (shard / name).write_text("not fsmw's\n")
    (rd / "shard-999").mkdir()
    workers = [procs.worker(store, i, options) for i in (1, 2)]

    result = master.result(timeout=40)
    assert_exits(workers, STOPPED)
    assert result["done"] == 8 and result["failed"] == [] and all_ok(result)
    assert anywhere(store, "*.err.*") == ["shard-000000/t0002.err.abc", "t0002.err.abc"]
    assert result["duplicates"] == 0, "a foreign file was counted as a duplicate result"
    for name in foreign:
        assert (rd / name).read_text() == "not fsmw's\n" == (store / name).read_text()
        assert (shard / name).read_text() == "not fsmw's\n"
    assert shard_dirs(store) == [shard] and names(rd / "shard-999") == []


def test_dead_claims_are_broken_once_by_many_watchers(procs, tmp_path):
    store, markers = tmp_path / "store", tmp_path / "markers"
    markers.mkdir()
    lease, n = 1.5, 6
    # Fast polling: the 6 judges see each claim go stale within milliseconds of each other.
    options = fast_options(lease_secs=lease, worker_idle_sleep_secs=0.01)
    master = procs.master(store, options, tasks=n)
    behaviour = dict(markers=markers, wait={"*": [str(tmp_path / "never"), None]},
                     sleep={"*": [0, 1.0]})
    holders = [procs.worker(store, i, options, **behaviour) for i in range(1, n + 1)]
    tasks = [f"t{i:04d}" for i in range(n)]
    for t in tasks:
        wait_for(lambda t=t: execution(markers, t, 1), 30, f"a holder to start {t}")
    watchers = [procs.worker(store, i, options, **behaviour) for i in range(n + 1, 2 * n + 1)]
    for w in watchers:
        w.wait_log("working on round-000001", 20)
    for h in holders:
        h.crash()  # with their keepers: many judges see the same stale claims

    result = master.result(timeout=40)
    assert_exits(watchers, STOPPED)
    rd = tasks_dir(store)
    runs = {t: len(executions(markers, t)) for t in tasks}
    assert runs == {t: 2 for t in tasks}, f"executions (1 lost + 1 recovery expected): {runs}"
    assert names(rd, "*.err.*") == [f"{t}.err.1" for t in tasks]
    assert all("lease expired" in (rd / f"{t}.err.1").read_text() for t in tasks)
    assert result["done"] == n and result["duplicates"] == 0 and all_ok(result)
