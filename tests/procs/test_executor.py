"""fsmw.Executor with real ``fsmw worker`` processes on a real store."""

from __future__ import annotations

import concurrent.futures as cf
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

import fsmw
from support import calls
from support.procs import wait_for

ROOT = Path(__file__).resolve().parents[2]
PATH = {"PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}  # where support.calls is
FAST = dict(lease_secs=5.0, max_attempts=2, worker_idle_sleep_secs=0.2)
pytestmark = pytest.mark.time_limit(90)


def worker_argv(store, worker_id=1, *flags):
    return [sys.executable, "-m", "fsmw", "worker", str(store), f"--worker_id={worker_id}",
            "--lease_secs=5", "--worker_idle_sleep_secs=0.2", "--worker_max_idle_secs=60", *flags]


def test_map_submit_and_the_futures_api_give_every_result(tmp_path):
    with fsmw.Executor(tmp_path / "s", local_workers=2, **FAST) as ex:
        assert list(ex.map(calls.square, range(50))) == [x * x for x in range(50)]
        assert list(ex.map(calls.add, range(30), range(30), chunksize=7)) == [2 * x for x in range(30)]
        futures = [ex.submit(calls.add, i, y=100) for i in range(10)]
        assert sorted(f.result(timeout=60) for f in cf.as_completed(futures, timeout=60)) == \
            [100 + i for i in range(10)]
        done, not_done = cf.wait([ex.submit(calls.square, 7)], timeout=60)
        assert not not_done and done.pop().result() == 49
    codes = ex._workers.wait()
    assert codes == [0, 0], "the workers exit with the stopped code once the with block ends"
    assert (tmp_path / "s" / "STOP").exists()


def test_map_with_chunks_runs_one_task_per_chunk(tmp_path):
    with fsmw.Executor(tmp_path / "s", local_workers=1, **FAST) as ex:
        assert list(ex.map(calls.square, range(10), chunksize=4)) == [x * x for x in range(10)]
    inputs = list((tmp_path / "s").glob("round-*/shard-*/*.in"))
    assert len(inputs) == 3  # 4 + 4 + 2


def test_a_remote_exception_comes_back_as_itself_with_its_traceback_and_host(tmp_path):
    with fsmw.Executor(tmp_path / "s", local_workers=1, **FAST) as ex:
        future = ex.submit(calls.even_only, 3)
        with pytest.raises(calls.Odd) as raised:
            future.result(timeout=60)
        assert ex.submit(calls.even_only, 4).result(timeout=60) == 4
    exc = raised.value
    assert exc.value == 3
    cause = exc.__cause__
    assert isinstance(cause, fsmw.RemoteTraceback)
    assert "raise Odd(x)" in cause.text and "calls.py" in cause.text
    assert "attempt 2 of 2" in cause.text and f"host {os.uname().nodename}" in cause.text
    if sys.version_info >= (3, 11):
        assert any("attempt 2" in note for note in exc.__notes__)
    errs = sorted((tmp_path / "s").glob("round-*/shard-*/*.err.*"))
    assert len(errs) == 2, "a raising call is a failed attempt, retried up to max_attempts"


def test_a_call_that_fails_once_is_retried_and_succeeds(tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    with fsmw.Executor(tmp_path / "s", local_workers=2, **FAST) as ex:
        assert list(ex.map(calls.fail_first, [str(marks)] * 5, range(5))) == list(range(5))
    assert len(list((tmp_path / "s").glob("round-*/shard-*/*.err.1"))) == 5


def test_results_stream_back_before_the_round_ends(tmp_path):
    with fsmw.Executor(tmp_path / "s", local_workers=2, **FAST) as ex:
        quick, slow = ex.submit(calls.nap, 0.0), ex.submit(calls.nap, 8.0)
        assert quick.result(timeout=60) == 0.0
        assert not slow.done(), "the quick call's result came while the slow one still ran"
        assert slow.result(timeout=60) == 8.0


def test_functions_that_cannot_travel_are_refused_at_submit(tmp_path, monkeypatch):
    with fsmw.Executor(tmp_path / "s", **FAST) as ex:
        with pytest.raises(fsmw.NotImportable, match="top level of an importable module"):
            ex.submit(lambda: 1)

        def local():
            return 1
        with pytest.raises(fsmw.NotImportable):
            ex.submit(local)
        main_fn = type(calls.square)(calls.square.__code__, {}, "in_main")
        main_fn.__module__, main_fn.__qualname__ = "__main__", "in_main"
        monkeypatch.setattr(sys.modules["__main__"], "in_main", main_fn, raising=False)  # a script's
        with pytest.raises(fsmw.NotImportable, match="defined in __main__"):
            ex.submit(main_fn)
    with pytest.raises(RuntimeError, match="after shutdown"):
        ex.submit(calls.square, 1)


def test_a_finished_store_is_refused_when_the_executor_is_made(tmp_path):
    with fsmw.Executor(tmp_path / "s", **FAST):
        pass
    with pytest.raises(fsmw.StoreError, match="finished run"):
        fsmw.Executor(tmp_path / "s", **FAST)


def test_shutdown_with_cancel_futures_cancels_what_has_not_started(tmp_path, procs):
    ex = fsmw.Executor(tmp_path / "s", **FAST)
    first = ex.submit(calls.square, 3)
    wait_for(lambda: list((tmp_path / "s").glob("round-*/SEALED")), 30, "round 1 sealed")
    queued = [ex.submit(calls.square, i) for i in range(5)]
    worker = procs.start("worker", worker_argv(tmp_path / "s"), env=PATH)
    ex.shutdown(wait=True, cancel_futures=True)
    assert first.result(timeout=0) == 9
    assert all(f.cancelled() for f in queued)
    assert worker.wait(30) == fsmw.ExitCode.STOPPED


def test_a_tampered_call_is_refused_and_nothing_runs(tmp_path, procs):
    store, marker = tmp_path / "s", tmp_path / "pwned"
    ex = fsmw.Executor(store, **dict(FAST, max_attempts=1))
    future = ex.submit(calls.square, 3)
    path = wait_for(lambda: list(store.glob("round-*/shard-*/c*.in")), 30, "the call's input")[0]
    wait_for(lambda: list(store.glob("round-*/SEALED")), 30, "round 1 sealed")
    head, _, _ = path.read_bytes().partition(b"\n\n")
    evil = pickle.dumps((os.mkdir, (str(marker),), {}))  # what an attacker would store
    path.write_bytes(head + b"\n\n" + evil)
    worker = procs.start("worker", worker_argv(store), env=PATH)
    with pytest.raises(fsmw.TaskFailed, match="HMAC does not match"):
        future.result(timeout=60)
    ex.shutdown()
    assert worker.wait(30) == fsmw.ExitCode.STOPPED
    assert not marker.exists(), "the tampered pickle was never loaded"
    err = next(store.glob("round-*/shard-*/*.err.1")).read_text()
    assert "nothing was run" in err and str(path) in err


def test_the_key_is_made_private_whatever_the_umask(tmp_path):
    old = os.umask(0)
    try:
        with fsmw.Executor(tmp_path / "s", **FAST):
            pass
    finally:
        os.umask(old)
    assert (tmp_path / "s" / "KEY").stat().st_mode & 0o777 == 0o600


def test_an_external_worker_serves_the_executor_and_exits_stopped(tmp_path, procs):
    worker = procs.start("worker", worker_argv(tmp_path / "s", 7), env=PATH)
    with fsmw.Executor(tmp_path / "s", **FAST) as ex:
        got = list(ex.map(calls.where, range(5)))
    assert [x for x, _, _ in got] == list(range(5))
    assert {pid for _, pid, _ in got} == {worker.pid}
    assert worker.wait(30) == fsmw.ExitCode.STOPPED
    for tool in (["status"], ["report", "--html", str(tmp_path / "r.html")]):
        assert subprocess.run([sys.executable, "-m", "fsmw", tool[0], str(tmp_path / "s"), *tool[1:]],
                              capture_output=True, text=True).returncode == 0
    assert "-000000004" in (tmp_path / "r.html").read_text()


def test_calls_submitted_while_a_round_runs_form_the_next_round(tmp_path):
    store = tmp_path / "s"
    with fsmw.Executor(store, local_workers=2, **FAST) as ex:
        slow = ex.submit(calls.nap, 3.0)
        wait_for(lambda: list(store.glob("round-000001/SEALED")), 30, "round 1 sealed")
        quick = ex.submit(calls.square, 5)
        assert quick.result(timeout=60) == 25
        assert slow.done(), "the next round began only once the running one was over"
    assert [p.name[-12:-3] for p in store.glob("round-000002/shard-*/*.in")] == ["000000001"]


CRASHING = """
import sys, time
import fsmw
from support import calls
ex = fsmw.Executor(sys.argv[1], lease_secs=5.0)
ex.submit(calls.nap, 60.0)
print("submitted", flush=True)
time.sleep(120)
"""


@pytest.mark.parametrize("given", ["keywords", "options"])
def test_a_new_executor_abandons_the_round_of_one_that_crashed(tmp_path, procs, given):
    store = tmp_path / "s"
    script = tmp_path / "crashing.py"
    script.write_text(CRASHING)
    crashed = procs.start("crashed", [sys.executable, str(script), str(store)], env=PATH)
    wait_for(lambda: list(store.glob("round-000001/SEALED")), 30, "round 1 sealed")
    crashed.crash()
    crashed.wait(10)
    how = dict(options=fsmw.Options(**FAST)) if given == "options" else FAST
    with fsmw.Executor(store, local_workers=1, **how) as ex:
        assert list(ex.map(calls.square, [2, 3])) == [4, 9]
    assert "abandoned" in (store / "round-000001" / "CLOSED").read_text()


def test_the_readme_examples_run_as_written(tmp_path):
    got = subprocess.run([sys.executable, str(ROOT / "examples" / "executor.py"), str(tmp_path / "e")],
                         capture_output=True, text=True, timeout=60)
    assert got.returncode == 0, got.stderr
    lines = got.stdout.splitlines()
    assert lines[0] == "2147483647 = 2147483647" and len(lines) == 21
    assert lines[-1] == "factorize(1) raised ValueError: cannot factorize 1: need an integer >= 2"
    (tmp_path / "numbers.txt").write_text("12\n35\n97\n")
    ran = subprocess.run([sys.executable, "-m", "fsmw", "run", str(tmp_path / "r"), "--tasks", "numbers.txt",
                          "--local-workers", "2", "--", "factor", "{}"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout == "12: 2 2 3\n35: 5 7\n97: 97\n"
