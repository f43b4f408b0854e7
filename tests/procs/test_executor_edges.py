"""fsmw.Executor at its edges: failures while writing, SystemExit, nested maps, replays, Ctrl-C,
timeouts, shutdown without waiting, and an interpreter that exits without shutdown."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import TimeoutError as FuturesTimeout
from pathlib import Path

import pytest

import fsmw
from fsmw._tasks import executor as executor_module
from support import calls
from support.procs import wait_for

ROOT = Path(__file__).resolve().parents[2]
PATH = {"PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
FAST = dict(lease_secs=5.0, max_attempts=2, worker_idle_sleep_secs=0.2)
pytestmark = pytest.mark.time_limit(90)


def worker_argv(store, worker_id=1):
    return [sys.executable, "-m", "fsmw", "worker", str(store), f"--worker_id={worker_id}",
            "--lease_secs=5", "--max_attempts=2", "--worker_idle_sleep_secs=0.2"]


def test_a_store_failing_while_a_round_is_written_ends_every_future(tmp_path, monkeypatch):
    written = []

    def failing(self, task, data):
        if written:
            raise OSError(28, "No space left on device")
        written.append(task)
        return original(self, task, data)
    original = executor_module._CallMaster.create_input_file
    monkeypatch.setattr(executor_module._CallMaster, "create_input_file", failing)
    ex = fsmw.Executor(tmp_path / "s", **FAST)
    futures = [ex.submit(calls.square, i) for i in range(4)]
    for future in futures:
        with pytest.raises(OSError, match="No space left"):
            future.result(timeout=30)
    ex.shutdown()
    with pytest.raises(RuntimeError, match="has ended: .*No space left"):
        ex.submit(calls.square, 1)


def test_system_exit_in_a_call_fails_the_call_and_keeps_the_workers(tmp_path):
    with fsmw.Executor(tmp_path / "s", local_workers=1, **FAST) as ex:
        with pytest.raises(SystemExit) as raised:
            ex.submit(sys.exit, 2).result(timeout=60)
        assert raised.value.code == 2
        assert ex.submit(calls.square, 3).result(timeout=60) == 9
    assert ex._workers.wait() == [0]


def test_a_map_over_another_maps_results_does_not_deadlock(tmp_path):
    with fsmw.Executor(tmp_path / "s", local_workers=2, **FAST) as ex:
        assert list(ex.map(calls.square, ex.map(calls.square, [1, 2, 3]))) == [1, 16, 81]


def test_a_steady_stream_of_submits_still_starts_rounds(tmp_path):
    with fsmw.Executor(tmp_path / "s", local_workers=2, **FAST) as ex:
        first = ex.submit(calls.square, 2)
        started = time.monotonic()
        while not first.done() and time.monotonic() - started < 20:
            ex.submit(calls.square, 1)  # a call every 20 ms: submitting never pauses for 50 ms
            time.sleep(0.02)
        assert first.done() and first.result() == 4
        assert time.monotonic() - started < 10


def test_map_timeout_and_shutdown_without_waiting(tmp_path, procs):
    store = tmp_path / "s"
    ex = fsmw.Executor(store, **FAST)
    results = ex.map(calls.square, [3], timeout=0.5)
    with pytest.raises(FuturesTimeout):
        next(results)
    later = ex.submit(calls.square, 4)
    began = time.monotonic()
    ex.shutdown(wait=False)
    assert time.monotonic() - began < 1, "shutdown(wait=False) returns at once"
    assert not (store / "STOP").exists()
    worker = procs.start("worker", worker_argv(store), env=PATH)
    assert later.result(timeout=60) == 16, "calls queued before shutdown still run"
    assert worker.wait(30) == fsmw.ExitCode.STOPPED
    assert (store / "STOP").exists()


@pytest.mark.parametrize("how", ["next round", "round renamed away"])
def test_a_result_replayed_from_an_earlier_round_is_refused(tmp_path, procs, how):
    store = tmp_path / "s"
    script = tmp_path / "first.py"
    script.write_text("import sys, time\nimport fsmw\nfrom support import calls\n"
                      "ex = fsmw.Executor(sys.argv[1], local_workers=1, lease_secs=5.0)\n"
                      "print(ex.submit(calls.square, 3).result(), flush=True)\ntime.sleep(120)\n")
    first = procs.start("first", [sys.executable, str(script), str(store)], env=PATH)
    first.wait_log("9", 60)
    first.crash()  # its round stays open; the next Executor abandons it
    first.wait(10)
    old = next(store.glob("round-000001/shard-*/*.out"))
    if how == "round renamed away":  # so that the next round is numbered 1 again
        old = Path(shutil.copy(old, tmp_path / "kept.out"))
        (store / "round-000001").rename(tmp_path / "old-round")
    ex = fsmw.Executor(store, **FAST)
    future = ex.submit(calls.square, 100)
    number = 2 if how == "next round" else 1
    new = wait_for(lambda: list(store.glob(f"round-00000{number}/shard-*/*.in")), 30, "the new input")[0]
    wait_for(lambda: (store / f"round-00000{number}" / "SEALED").exists(), 30, "the new round sealed")
    shutil.copy(old, new.with_suffix(".out"))  # what someone who can write the store could do
    with pytest.raises(fsmw.PayloadRejected, match=f"round {number} task {new.stem} .*replayed"):
        future.result(timeout=60)
    ex.shutdown()


CTRL_C = """
import sys
import fsmw
from support import calls
with fsmw.Executor(sys.argv[1], local_workers=2, lease_secs=5.0) as ex:
    print("running", flush=True)
    list(ex.map(calls.nap, [30.0] * 4))
"""


def test_ctrl_c_ends_the_run_and_its_local_workers(tmp_path, procs):
    store, script = tmp_path / "s", tmp_path / "ctrl_c.py"
    script.write_text(CTRL_C)
    main = procs.start("main", [sys.executable, str(script), str(store)], env=PATH)
    main.wait_log("running", 30)
    wait_for(lambda: len(list(store.glob("round-*/shard-*/*.claim.*"))) == 2, 30, "both workers busy")
    os.killpg(main.pid, signal.SIGINT)  # a terminal's Ctrl-C reaches the whole foreground group
    assert main.wait(45) != 0
    assert "KeyboardInterrupt" in main.text() and (store / "STOP").exists()
    left = subprocess.run(["pgrep", "-f", f"fsmw worker {store}"], capture_output=True, text=True)
    assert left.stdout == "", "the local workers ended with the run"


EXITING = """
import sys
import fsmw
from support import calls
ex = fsmw.Executor(sys.argv[1], local_workers=1, lease_secs=5.0)
print(ex.submit(calls.square, 3).result(), flush=True)
ex.submit(calls.square, 4)  # queued, never waited for, no shutdown
"""


def test_an_interpreter_that_exits_without_shutdown_runs_its_calls_and_ends_the_run(tmp_path, procs):
    store, script = tmp_path / "s", tmp_path / "exiting.py"
    script.write_text(EXITING)
    main = procs.start("main", [sys.executable, str(script), str(store)], env=PATH)
    assert main.wait(60) == 0, main.tail()
    assert (store / "STOP").exists()
    assert len(list(store.glob("round-*/shard-*/*.out"))) == 2


def test_local_workers_stop_when_their_starter_is_killed(tmp_path, procs):
    store, tasks = tmp_path / "s", tmp_path / "tasks.txt"
    tasks.write_text("".join(f"{i}\n" for i in range(4)))
    main = procs.start("run", [sys.executable, "-m", "fsmw", "run", str(store), "--tasks", str(tasks),
                               "--local-workers", "2", "--lease_secs=5", "--", "sleep", "30"])
    wait_for(lambda: len(list(store.glob("round-*/shard-*/*.claim.*"))) == 2, 30, "both workers busy")
    main.signal(signal.SIGKILL)  # no STOP is written: the workers must notice by themselves
    main.wait(10)

    def workers_left():
        return subprocess.run(["pgrep", "-f", f"fsmw worker {store}"], capture_output=True,
                              text=True).stdout.split()
    wait_for(lambda: not workers_left(), 30, "the orphaned local workers to stop")
    assert not (store / "STOP").exists()
