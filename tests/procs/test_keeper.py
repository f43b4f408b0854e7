"""The worker's keeper process, with real processes (issue 11, items 7, 9, 2 and 4).

A claim lives as long as its worker process lives, whatever ``process_file``
does with the GIL; a dead worker's attempt is recorded at once (and counts);
a worker stuck in a task whose result is no longer needed leaves it, or is
killed if it cannot; ``on_stop`` says what STOP does to a running task.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time

import pytest

import fsmw
from fsmw import ExitCode
from fsmw._worker.keeper import Keeper
from support.procs import execution, executions, fast_options, wait_for
from support.stores import Squarer, names, tasks_dir

STOPPED = int(ExitCode.STOPPED)
MARGIN = 3.0  # seconds of slack for a shared, noisy 2-core machine


def kill(master) -> None:
    """No master: nobody closes the round, so STOP alone acts on the running task."""
    master.signal(signal.SIGKILL)
    assert master.wait(20) == -signal.SIGKILL


def fsmw_stop(store) -> None:
    done = subprocess.run([sys.executable, "-m", "fsmw", "stop", str(store)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr


@pytest.mark.time_limit(90)
@pytest.mark.parametrize("keeper", [True, False], ids=["keeper-process", "heartbeat-thread-alone"])
def test_a_task_holding_the_gil_for_three_leases_keeps_its_claim(procs, tmp_path, keeper):
    store, markers = tmp_path / "store", tmp_path / "markers"
    markers.mkdir()
    lease = 2.0
    options = fast_options(lease_secs=lease)
    master = procs.master(store, options, tasks=1)
    holder = procs.worker(store, 1, options, markers=markers, gil={"t0000": [3 * lease, 0]},
                          keeper=keeper)
    wait_for(lambda: execution(markers, "t0000", 1), 20, "t0000 to start (and hold the GIL)")
    judge = procs.worker(store, 2, options, markers=markers, keeper=keeper)  # ready to break it

    result = master.result(timeout=40)
    assert [holder.wait(20), judge.wait(20)] == [STOPPED, STOPPED]
    rd = tasks_dir(store)
    if keeper:  # the keeper process heartbeats while the C call holds the GIL
        assert names(rd, "t0000.err.*") == [] and result["duplicates"] == 0
        assert result["report"]["1"]["outputs"]["t0000"]["pid"] == holder.pid
        assert len(executions(markers, "t0000")) == 1
    else:  # the proof that this C call really starves a heartbeat thread
        assert "lease expired" in (rd / "t0000.err.1").read_text()
        assert result["report"]["1"]["outputs"]["t0000"]["pid"] == judge.pid
        assert len(executions(markers, "t0000")) == 2


@pytest.mark.time_limit(90)
def test_a_retry_that_holds_the_gil_is_not_marked_failed(procs, tmp_path):
    store, markers = tmp_path / "store", tmp_path / "markers"
    markers.mkdir()
    lease = 2.0
    options = fast_options(lease_secs=lease, max_attempts=2)
    master = procs.master(store, options, tasks=1)
    # Execution 1 raises; execution 2, the last attempt allowed, holds the GIL for 3 leases.
    behaviour = dict(markers=markers, fail={"t0000": 1}, gil={"t0000": [0, 3 * lease]})
    workers = [procs.worker(store, i, options, **behaviour) for i in (1, 2)]

    result = master.result(timeout=40)
    for w in workers:
        assert w.wait(20) == STOPPED, w.tail()
    rd = tasks_dir(store)
    assert result["done"] == 1 and result["failed"] == []
    assert names(rd, "t0000.err.*") == ["t0000.err.1"] and not (rd / "t0000.failed").exists()
    assert "boom" in (rd / "t0000.err.1").read_text()
    assert len(executions(markers, "t0000")) == 2


def test_a_killed_worker_s_task_is_redone_well_within_the_lease(procs, tmp_path):
    store, markers = tmp_path / "store", tmp_path / "markers"
    markers.mkdir()
    lease = 30.0  # so long that only the keeper can explain a quick recovery
    options = fast_options(lease_secs=lease)
    master = procs.master(store, options, tasks=1)
    hold = {"t0000": [str(tmp_path / "never"), None]}
    victim = procs.worker(store, 1, options, markers=markers, wait=hold)
    wait_for(lambda: execution(markers, "t0000", 1), 20, "worker 1 to start t0000")
    survivor = procs.worker(store, 2, options, markers=markers, wait=hold)
    survivor.wait_log("working on round-000001", 20)

    victim.signal(signal.SIGKILL)  # the worker alone: its keeper lives on
    killed_at = time.monotonic()
    assert victim.wait(5) == -signal.SIGKILL
    wait_for((tasks_dir(store) / "t0000.out").exists, 20, "t0000.out after the kill")
    recovery = time.monotonic() - killed_at

    result = master.result(timeout=20)
    assert survivor.wait(20) == STOPPED
    assert recovery < 2 * MARGIN, f"recovery took {recovery:.1f} s (lease {lease:.0f} s)"
    record = (tasks_dir(store) / "t0000.err.1").read_text()
    assert f"error: worker process {victim.pid} died while running the task" in record, record
    assert "attempt: 1" in record and "lease expired" not in record
    assert result["report"]["1"]["outputs"]["t0000"]["pid"] == survivor.pid


@pytest.mark.time_limit(90)
def test_a_task_that_kills_its_worker_every_time_ends_failed(procs, tmp_path):
    store, markers = tmp_path / "store", tmp_path / "markers"
    markers.mkdir()
    options = fast_options(lease_secs=30.0, max_attempts=3)
    master = procs.master(store, options, tasks=2)
    behaviour = dict(markers=markers, suicide={"t0000": [True]})
    dead = []
    while master.alive() and len(dead) < 5:  # fresh workers, one after another
        worker = procs.worker(store, 10 + len(dead), options, **behaviour)
        code = worker.wait(30)
        if code != -signal.SIGKILL:
            assert code == STOPPED, worker.tail()
            break
        dead.append(worker.pid)

    result = master.result(timeout=20)
    rd = tasks_dir(store)
    assert len(dead) == 3 and [(f[0], f[1]) for f in result["failed"]] == [(1, "t0000")]
    assert result["done"] == 1 and (rd / "t0000.failed").exists()
    for gen, pid in enumerate(dead, 1):
        assert f"worker process {pid} died" in (rd / f"t0000.err.{gen}").read_text()
    assert "attempts: 3" in (rd / "t0000.failed").read_text()


def test_stop_interrupts_a_hung_task_and_gives_it_back(procs, tmp_path):
    store, markers = tmp_path / "store", tmp_path / "markers"
    markers.mkdir()
    lease = 2.0
    options = fast_options(lease_secs=lease)  # on_stop="interrupt", the default
    master = procs.master(store, options, tasks=1)
    worker = procs.worker(store, 1, options, markers=markers, wait={"*": [str(tmp_path / "never")]})
    wait_for(lambda: execution(markers, "t0000", 1), 20, "t0000 to start (and hang)")
    kill(master)

    fsmw_stop(store)
    stopped_at = time.monotonic()
    assert worker.wait(lease + 2 * MARGIN) == STOPPED, worker.tail()
    took = time.monotonic() - stopped_at
    rd = tasks_dir(store)
    assert took < lease / 5 + MARGIN, f"the worker took {took:.1f} s to leave after STOP"
    assert names(rd, "t0000.*") == ["t0000.in"], "the interrupted task was not given back"
    assert not executions(markers, "t0000")[0]["ended"]


def test_stop_with_on_stop_finish_lets_the_running_task_publish(procs, tmp_path):
    store, markers, gate = tmp_path / "store", tmp_path / "markers", tmp_path / "gate"
    markers.mkdir()
    lease = 1.0
    options = fast_options(lease_secs=lease, on_stop="finish")
    master = procs.master(store, options, tasks=3)
    worker = procs.worker(store, 1, options, markers=markers, wait={"*": [str(gate)]})
    first = wait_for(lambda: [t for t in ("t0000", "t0001", "t0002") if executions(markers, t)],
                     20, "a task to start")[0]
    kill(master)

    fsmw_stop(store)
    time.sleep(lease + 5 * lease / 5)  # the span under test: a grace and five heartbeats
    assert worker.alive() and not executions(markers, first)[0]["ended"]
    gate.touch()
    assert worker.wait(20) == STOPPED
    rd = tasks_dir(store)
    assert (rd / f"{first}.out").exists() and names(rd, "*.dup.*") + names(rd, "*.err.*") == []
    assert sum(len(executions(markers, t)) for t in ("t0000", "t0001", "t0002")) == 1


@pytest.mark.time_limit(90)
def test_a_worker_stuck_in_c_code_is_killed_after_the_grace(procs, tmp_path):
    store, markers = tmp_path / "store", tmp_path / "markers"
    markers.mkdir()
    lease = 2.0
    options = fast_options(lease_secs=lease)
    master = procs.master(store, options, tasks=1)
    worker = procs.worker(store, 1, options, markers=markers, gil={"*": [60]}, deaf=True)
    wait_for(lambda: execution(markers, "t0000", 1), 20, "t0000 to start (deaf, in C)")
    kill(master)

    fsmw_stop(store)
    stopped_at = time.monotonic()
    assert worker.wait(lease / 5 + lease + 2 * MARGIN) == -signal.SIGKILL, worker.tail()
    took = time.monotonic() - stopped_at
    assert took >= lease, f"killed after {took:.1f} s, before the grace of {lease} s"
    rd = tasks_dir(store)
    assert "did not leave task t0000 within 2 s" in worker.text()
    # The keeper gave the task back: no failed attempt, no live claim.
    wait_for(lambda: names(rd, "t0000.*") == ["t0000.in"], 10, "the claim given back")


def test_a_worker_in_another_thread_is_never_signalled(procs, tmp_path):
    store, markers, gate = tmp_path / "store", tmp_path / "markers", tmp_path / "gate"
    markers.mkdir()
    lease = 1.0
    options = fast_options(lease_secs=lease)
    master = procs.master(store, options, tasks=1)
    worker = procs.worker(store, 1, options, markers=markers, wait={"*": [str(gate)]}, thread=True)
    wait_for(lambda: execution(markers, "t0000", 1), 20, "t0000 to start")
    kill(master)

    fsmw_stop(store)
    time.sleep(lease + 5 * lease / 5)  # a grace and five heartbeats: no nudge, no SIGKILL
    assert worker.alive() and not executions(markers, "t0000")[0]["ended"]
    gate.touch()  # the task finishes as with on_stop="finish"
    assert worker.wait(20) == STOPPED
    assert (tasks_dir(store) / "t0000.out").exists()


def test_several_workers_in_one_process_have_a_keeper_each_and_reap_it(tmp_path, monkeypatch):
    started = []
    real_start = Keeper._start

    def recording_start(self):
        ok = real_start(self)
        started.append(self._proc)
        return ok

    monkeypatch.setattr(Keeper, "_start", recording_start)

    class Squares(fsmw.Master):
        def create_input_files(self):
            for i in range(20):
                self.create_input_file(f"t{i}", str(i))

    store = tmp_path / "store"
    master = Squares(store, progress=False, master_idle_sleep_secs=0.05)
    workers = [Squarer(store, i, worker_idle_sleep_secs=0.05) for i in (1, 2)]
    codes = []
    threads = [threading.Thread(target=lambda w=w: codes.append(w.run())) for w in workers]
    for t in threads:
        t.start()
    try:
        summary = master.run()
    finally:
        for t in threads:
            t.join(30)
    assert summary.done == 20 and codes == [fsmw.ExitCode.STOPPED] * 2
    assert sum(w.tasks_done for w in workers) == 20
    working = [w for w in workers if w.tasks_done]
    assert len(started) == len(working) and len({p.pid for p in started}) == len(started)
    assert all(p.returncode == 0 for p in started)  # each keeper saw EOF, exited and was reaped


@pytest.mark.time_limit(90)
def test_a_worker_whose_hung_task_was_backed_up_leaves_it_and_works_on(procs, tmp_path):
    store, markers = tmp_path / "store", tmp_path / "markers"
    markers.mkdir()
    lease = 2.0
    options = fast_options(lease_secs=lease, process_secs=0.5, lockfile_timeout_threshold=1.0)
    master = procs.master(store, options, tasks=4, rounds=2)
    behaviour = dict(markers=markers, wait={"1/t0000": [str(tmp_path / "never"), None]},
                     sleep={f"2/t000{i}": [1.0] for i in range(4)})
    hung = procs.worker(store, 1, options, **behaviour)
    first = wait_for(lambda: execution(markers, "t0000", 1), 20, "t0000 to start (and hang)")
    assert first["pid"] == hung.pid
    helper = procs.worker(store, 2, options, **behaviour)

    result = master.result(timeout=60)
    assert [hung.wait(20), helper.wait(20)] == [STOPPED, STOPPED]
    rd1 = tasks_dir(store, 1)
    (dup,) = names(rd1, "t0000.dup.*")
    assert "reason: abandoned: a result was already published" in (rd1 / dup).read_text()
    assert result["done"] == 8 and result["failed"] == [] and names(rd1, "*.err.*") == []
    round2 = [e["pid"] for t in ("t0000", "t0001", "t0002", "t0003") for e in executions(markers, t, 2)]
    assert hung.pid in round2, "the worker that left its hung task did not work on round 2"
