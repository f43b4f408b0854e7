"""The ``fsmw`` command on stores of real runs (master and workers as processes).

Covers normal, empty, mid-run and damaged stores; every command is run as
``python -m fsmw ...`` and judged by its exit code and output.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from fsmw import ExitCode
from support.procs import executions, fast_options, fsmw, status_json, wait_for
from support.stores import names, round_dir, tasks_dir


def test_status_of_a_run_in_progress(procs, tmp_path):
    store, gate, markers = tmp_path / "store", tmp_path / "gate", tmp_path / "markers"
    markers.mkdir()
    options = fast_options()
    master = procs.master(store, options, tasks=3)
    for worker_id in (7, 8):
        procs.worker(store, worker_id, options, markers=str(markers), wait={"t0001": [str(gate)]})
    wait_for(lambda: executions(markers, "t0001"), 20, "t0001 to start")
    wait_for(lambda: status_json(store)["rounds"][0]["done"] == 2, 20, "the other tasks")
    code, text, _ = fsmw("status", store)
    assert code == 0
    assert "round(s)" in text and "t0001 attempt 1: worker " in text and "heartbeat" in text
    state = status_json(store)["rounds"][0]
    assert (state["tasks"], state["done"], state["pending"], len(state["failed"])) == (3, 2, 0, 0)
    (running,) = state["running"]
    assert running["task"] == "t0001" and running["worker_id"] in ("7", "8")
    assert running["heartbeat_age"] < 5
    gate.touch()
    master.result(timeout=30)
    final = status_json(store)
    assert final["stopped"] and final["rounds"][0]["done"] == 3 and final["rounds"][0]["closed"]


def test_status_of_empty_missing_and_damaged_stores(tmp_path):
    (tmp_path / "empty").mkdir()
    code, text, _ = fsmw("status", tmp_path / "empty")
    assert code == 0 and "no rounds yet" in text
    code, out, err = fsmw("status", tmp_path / "nowhere")
    assert code == 1 and out == "" and err.count("\n") == 1 and str(tmp_path / "nowhere") in err
    damaged = tasks_dir(tmp_path / "damaged")
    damaged.mkdir(parents=True)
    for name, data in [("a.in", b"x"), ("a.claim.1", b"\x00\xffgarbage"), ("b.in", b"x"),
                       ("b.failed", b"\xfe"), ("notes.txt", b"hi"), ("c.out", b"no input"),
                       ("d.claim.zz", b"")]:
        (damaged / name).write_bytes(data)
    for name, data in [(".journal.x.1.ab", b"{torn"), ("notes.txt", b"hi"), ("SEALED", b"\xff")]:
        (round_dir(tmp_path / "damaged") / name).write_bytes(data)
    state = status_json(tmp_path / "damaged")["rounds"][0]
    assert (state["tasks"], len(state["running"]), list(state["failed"])) == (2, 1, ["b"])


def test_requeue_stale_breaks_only_dead_claims(procs, tmp_path):
    store, markers, gate = tmp_path / "store", tmp_path / "markers", tmp_path / "gate"
    markers.mkdir()
    slow = fast_options(lease_secs=60.0)  # no worker would break anything for a minute
    master = procs.master(store, slow, tasks=2)
    doomed = procs.worker(store, 1, slow, markers=str(markers), wait={"*": [str(gate)]})
    live = procs.worker(store, 2, fast_options(lease_secs=1.0), markers=str(markers),
                        wait={"*": [str(gate)]})
    wait_for(lambda: executions(markers, "t0000") and executions(markers, "t0001"), 20, "both tasks")
    doomed.crash()  # with its keeper (which would record the attempt at once): a dead node
    dead_task = next(t for t in ("t0000", "t0001") if executions(markers, t)[0]["pid"] == doomed.pid)
    wait_for(lambda: any(r["heartbeat_age"] > 2.5 for r in status_json(store)["rounds"][0]["running"]),
             20, "the dead claim to age")
    code, out, _ = fsmw("requeue", store, "--stale", "--lease", 2)
    assert code == 0 and f"{dead_task}: claim 1 silent" in out and "requeued 1 task(s)" in out
    assert names(tasks_dir(store), "*.err.*") == [f"{dead_task}.err.1"]
    assert "requeued by fsmw requeue" in (tasks_dir(store) / f"{dead_task}.err.1").read_text()
    gate.touch()
    procs.worker(store, 3, slow, markers=str(markers))
    result = master.result(timeout=30)
    assert result["done"] == 2 and len(executions(markers, dead_task)) == 2
    assert live.wait(20) == 0


def test_requeue_failed_makes_failed_tasks_pending_again(procs, tmp_path):
    store, markers, hold = tmp_path / "store", tmp_path / "markers", tmp_path / "hold"
    markers.mkdir()
    options = fast_options(max_attempts=2)
    master = procs.master(store, options, tasks=2)
    workers = [procs.worker(store, i, options, markers=str(markers), fail={"t0000": 2},
                            wait={"t0001": [str(hold)]}) for i in (1, 2)]
    wait_for(lambda: (tasks_dir(store) / "t0000.failed").exists(), 20, "t0000 to fail twice")
    code, out, _ = fsmw("requeue", store, "--failed")
    assert code == 0 and "t0000: failed -> pending" in out
    assert (round_dir(store) / "REQUEUED").exists()  # the workers look at every shard again
    hold.touch()
    result = master.result(timeout=30)
    assert result["done"] == 2 and result["failed"] == []
    assert len(executions(markers, "t0000")) == 3
    assert sorted(names(tasks_dir(store), "t0000.err.*")) == ["t0000.err.1.requeued",
                                                              "t0000.err.2.requeued"]
    assert all(w.wait(20) == 0 for w in workers)


def test_stop_ends_workers_and_master(procs, tmp_path):
    store, gate = tmp_path / "store", tmp_path / "never"
    options = fast_options()
    master = procs.master(store, options, tasks=2)
    worker = procs.worker(store, 1, options, wait={"t0001": [str(gate)], "t0000": [str(gate)]})
    wait_for(lambda: (round_dir(store) / "SEALED").exists(), 20, "the round to be sealed")
    (running,) = wait_for(lambda: status_json(store)["rounds"][0]["running"], 20, "a task to run")
    idle = procs.worker(store, 2, options)
    code, out, _ = fsmw("stop", store)
    assert code == 0 and "STOP" in out
    result = master.result(timeout=30)
    assert result["stopped"] is True and result["done"] in (0, 1)
    assert idle.wait(20) == int(ExitCode.STOPPED)
    # on_stop="interrupt" (the default): the worker whose task would never end leaves it and exits
    # too, once its keeper sees STOP (or the claim the closing master fenced).  (A SIGTERM sent here
    # raced with that; tests/procs checks that SIGTERM interrupts a task.)
    assert worker.wait(20) == int(ExitCode.STOPPED), worker.tail()
    assert f"task {running['task']}: " in worker.text() and "leaving it" in worker.text()
    assert not (tasks_dir(store) / f"{running['task']}.out").exists()


def test_clean_removes_dead_temps_and_closed_rounds_debris(tmp_path):
    closed = tasks_dir(tmp_path / "store", 1)
    still_open = tasks_dir(tmp_path / "store", 2)
    closed.mkdir(parents=True)
    still_open.mkdir(parents=True)
    (round_dir(tmp_path / "store", 1) / "CLOSED").write_text("x")
    for name in ("a.in", "a.out", "a.claim.1", ".tmp.h.1.old", ".tmp.h.2.new",
                 ".worker.h.7.ab", ".worker.h.8.cd"):
        (closed / name).write_text("x")
    (still_open / ".worker.h.9.ef").write_text("x")  # a token in an open round may be in use
    (tmp_path / "store" / ".tmp.h.3.old").write_text("x")
    for old in (closed / ".tmp.h.1.old", tmp_path / "store" / ".tmp.h.3.old", closed / ".worker.h.7.ab",
                still_open / ".worker.h.9.ef"):
        os.utime(old, (1, 1))
    code, out, _ = fsmw("clean", tmp_path / "store", "--dry-run")
    assert code == 0 and "4 file(s) to remove" in out and (closed / "a.claim.1").exists()
    code, out, _ = fsmw("clean", tmp_path / "store")
    assert code == 0 and "4 file(s) removed" in out
    assert sorted(os.listdir(closed)) == [".tmp.h.2.new", ".worker.h.8.cd", "a.in", "a.out"]
    assert sorted(os.listdir(round_dir(tmp_path / "store", 1))) == ["CLOSED", "shard-000000"]
    assert os.listdir(still_open) == [".worker.h.9.ef"]


@pytest.mark.parametrize("argv", [["--help"], ["status", "--help"], ["requeue", "--help"],
                                  ["clean", "--help"], ["stop", "--help"], ["doctor", "--help"],
                                  ["report", "--help"]])
def test_every_subcommand_has_help(argv):
    code, out, _ = fsmw(*argv)
    assert code == 0 and "usage: fsmw" in out


def test_usage_errors_exit_2():
    code, _, err = fsmw("requeue", "somewhere")
    assert code == 2 and "one of the arguments --failed --stale is required" in err


def test_worker_with_a_short_allocation_never_starts_a_task_it_cannot_finish(procs, tmp_path):
    store, markers = tmp_path / "store", tmp_path / "markers"
    markers.mkdir()
    master = procs.master(store, fast_options(), tasks=4)
    short = procs.worker(store, 1, fast_options(walltime_secs=10.0), markers=str(markers),
                         sleep={"*": [4.0]})
    assert short.wait(30) == int(ExitCode.OUT_OF_TIME), short.tail()
    mine = [e for t in ("t0000", "t0001", "t0002", "t0003") for e in executions(markers, t)
            if e["pid"] == short.pid]
    assert len(mine) == 2 and all(e["ended"] for e in mine)
    procs.worker(store, 2, fast_options(), markers=str(markers))
    assert master.result(timeout=60)["done"] == 4


def test_sigusr1_releases_the_task_and_exits(procs, tmp_path):
    store, markers = tmp_path / "store", tmp_path / "markers"
    markers.mkdir()
    master = procs.master(store, fast_options(), tasks=1)
    worker = procs.worker(store, 1, fast_options(), markers=str(markers),
                          wait={"*": [str(tmp_path / "never"), None]})
    wait_for(lambda: executions(markers, "t0000"), 20, "the task to start")
    worker.signal(signal.SIGUSR1)
    assert worker.wait(20) == int(ExitCode.INTERRUPTED)
    assert names(tasks_dir(store), "t0000.in") == ["t0000.in"]
    assert names(tasks_dir(store), "t0000.claim.*") == []
    procs.worker(store, 2, fast_options(), markers=str(markers))
    assert master.result(timeout=30)["done"] == 1


def read_pty(fd: int) -> str:
    """All a finished child wrote to the pseudo-terminal (EIO marks the end)."""
    chunks = []
    try:
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    except OSError:
        pass
    finally:
        os.close(fd)
    return b"".join(chunks).decode(errors="replace")


def test_master_progress_on_a_terminal_and_in_a_log(tmp_path):
    import pty

    script = ("import fsmw, sys\n"
              "class M(fsmw.Master):\n"
              "    def create_input_files(self):\n"
              "        for i in range(5): self.create_input_file(f't{i}', 'x')\n"
              "class W(fsmw.Worker):\n"
              "    def process_file(self, i, o): o.write_text('y')\n"
              "import threading\n"
              "w = W(sys.argv[1], 1, worker_idle_sleep_secs=0.1)\n"
              "t = threading.Thread(target=w.run); t.start()\n"
              "progress = None if sys.argv[2] == 'auto' else sys.argv[2] == 'on'\n"
              "M(sys.argv[1], progress=progress, progress_secs=0.01).run(); t.join()\n")
    for mode, tty in (("auto", True), ("auto", False), ("off", True), ("on", False)):
        store = tmp_path / f"s-{mode}-{tty}"
        if tty:
            master_fd, slave_fd = pty.openpty()
            err = slave_fd
        else:
            err = open(tmp_path / f"log-{mode}", "wb")
        proc = subprocess.run([sys.executable, "-c", script, str(store), mode], stderr=err,
                              timeout=60)
        if tty:
            os.close(slave_fd)
            text = read_pty(master_fd)
        else:
            err.close()
            text = (tmp_path / f"log-{mode}").read_text()
        assert proc.returncode == 0
        if mode == "off":
            assert "round 1 [" not in text
        elif tty:
            assert "\rround 1 [" in text and "5/5" in text
        else:  # a log file gets whole lines, the last one at the end of the round
            assert "round 1 [" in text and "\r" not in text and "5/5" in text


def test_stop_on_a_directory_that_is_not_a_store_is_an_error(tmp_path):
    (tmp_path / "plain").mkdir()
    code, out, err = fsmw("stop", tmp_path / "plain")
    assert code == 1 and out == "" and "is not an fsmw store" in err and str(tmp_path / "plain") in err
    assert not (tmp_path / "plain" / "STOP").exists()
    code, _, err = fsmw("stop", tmp_path / "nowhere")
    assert code == 1 and "does not exist" in err
