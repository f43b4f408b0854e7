"""Every run ends: hung tasks get backups, STOP stops workers without a master (real processes)."""

from __future__ import annotations

import signal
import subprocess
import sys

from fsmw import ExitCode
from support.procs import execution, executions, fast_options, wait_for
from support.stores import names, tasks_dir


def test_a_hung_task_in_a_three_task_round_does_not_hold_it_up(procs, tmp_path):
    store, markers, never = tmp_path / "store", tmp_path / "markers", tmp_path / "never"
    markers.mkdir()
    # The default backup threshold (5%) and no process_secs: nobody knows how long a task takes.
    options = fast_options(lease_secs=2.0, lockfile_timeout_threshold=0.05)
    master = procs.master(store, options, tasks=3)
    hung = procs.worker(store, 1, options, markers=markers, wait={"t0001": [str(never), None]})
    first = wait_for(lambda: execution(markers, "t0001", 1), 20, "t0001 to start (and hang)")
    assert first["pid"] == hung.pid
    helper = procs.worker(store, 2, options, markers=markers)
    result = master.result(timeout=30)  # the backup of t0001 ends the round
    assert result["done"] == 3 and result["failed"] == []
    assert executions(markers, "t0001")[1]["pid"] == helper.pid
    assert names(tasks_dir(store), "t0001.err.*") == []  # the hung attempt is alive: never broken
    assert helper.wait(20) == int(ExitCode.STOPPED)
    # The hung worker leaves by itself (issue 11, item 2): its keeper sees the backup's
    # result, the worker abandons the task, then finds STOP.
    assert hung.wait(2.0 + 10) == int(ExitCode.STOPPED)
    (dup,) = names(tasks_dir(store), "t0001.dup.*")
    assert "reason: abandoned: a result was already published" in (tasks_dir(store) / dup).read_text()


def test_stop_without_a_master_ends_idle_and_busy_workers(procs, tmp_path):
    store, markers, gate = tmp_path / "store", tmp_path / "markers", tmp_path / "gate"
    markers.mkdir()
    options = fast_options()
    tasks = [f"t{i:04d}" for i in range(20)]
    master = procs.master(store, options, tasks=len(tasks))
    # Each task waits for the gate, then takes 0.3 s: the busy worker is inside one when STOP comes.
    behaviour = dict(markers=str(markers), wait={"*": [str(gate)]}, sleep={"*": [0.3]})
    busy = procs.worker(store, 1, options, **behaviour)
    wait_for(lambda: any(executions(markers, t) for t in tasks), 20, "a task to start")
    master.signal(signal.SIGKILL)  # the master is gone: nobody will close the round
    assert master.wait(20) == -signal.SIGKILL
    idle = procs.worker(store, 2, options, **behaviour)
    done = subprocess.run([sys.executable, "-m", "fsmw", "stop", str(store)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    gate.touch()  # the running task may finish
    assert busy.wait(20) == int(ExitCode.STOPPED)
    assert idle.wait(20) == int(ExitCode.STOPPED)
    started = sum(len(executions(markers, t)) for t in tasks)
    # Workers look for STOP once a second: a few 0.3 s tasks may start meanwhile, not the round.
    assert started <= 8, started
