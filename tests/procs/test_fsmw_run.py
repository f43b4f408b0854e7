"""``fsmw run`` and ``fsmw worker`` as a user runs them: real processes on a real store."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from support.procs import wait_for

pytestmark = pytest.mark.time_limit(90)
FSMW = [sys.executable, "-m", "fsmw"]
QUICK = ["--lease_secs=5", "--progress=false"]


def worker(procs, store, n=1, *flags):
    return procs.start(f"worker{n}", FSMW + ["worker", str(store), f"--worker_id={n}", "--lease_secs=5",
                                            "--worker_idle_sleep_secs=0.2", *flags])


def run(procs, store, tasks, *command, flags=(), name="run"):
    return procs.start(name, FSMW + ["run", str(store), "--tasks", str(tasks), *QUICK, *flags, "--",
                                     *command])


def split_log(proc):
    """(stdout, stderr) of a run: Procs sends both to one log, so the tests write stdout lines
    that start with 'out:'."""
    lines = proc.text().splitlines()
    return [x for x in lines if x.startswith("out:")], [x for x in lines if not x.startswith("out:")]


def test_outputs_come_in_input_order_and_workers_exit_stopped(tmp_path, procs):
    tasks = tmp_path / "tasks.txt"
    tasks.write_text("".join(f"{i}\n" + ("\n" if i % 3 == 0 else "") for i in range(20)))
    store = tmp_path / "s"
    # later lines sleep less: they finish first, yet print after the earlier ones
    main = run(procs, store, tasks, "sh", "-c", 'sleep "0.$((20 - $1))"; echo "out:$1"', "sh", "{}")
    workers = [worker(procs, store, n) for n in (1, 2)]
    assert main.wait(60) == 0, main.tail()
    out, err = split_log(main)
    assert out == [f"out:{i}" for i in range(20)]
    assert any("20 tasks: 20 done, 0 failed" in line for line in err)
    assert [w.wait(30) for w in workers] == [0, 0], "workers exit with the stopped code"


def test_the_line_is_appended_when_the_command_has_no_placeholder(tmp_path, procs):
    tasks = tmp_path / "tasks.txt"
    tasks.write_text("a b\n$HOME\n")  # one argument each: no shell splits or expands it
    main = run(procs, tmp_path / "s", tasks, "printf", "out:[%s]\\n", flags=("--local-workers", "1"))
    assert main.wait(60) == 0, main.tail()
    assert split_log(main)[0] == ["out:[a b]", "out:[$HOME]"]


def test_a_failing_task_is_retried_then_named_and_the_run_exits_1(tmp_path, procs):
    tasks = tmp_path / "tasks.txt"
    tasks.write_text("ok\nbad\nok2\n")
    store = tmp_path / "s"
    main = run(procs, store, tasks, "sh", "-c", 'test "$1" != bad || { echo oops >&2; exit 7; }; '
               'echo "out:$1"', "sh", "{}", flags=("--max_attempts=2", "--local-workers", "2"))
    assert main.wait(60) == 1, main.tail()
    out, err = split_log(main)
    assert out == ["out:ok", "out:ok2"]
    named = [line for line in err if line.startswith("fsmw run: task line-000002")]
    assert named and "line 2: bad" in named[0] and "exited with code 7" in named[0]
    assert len(list(store.glob("round-*/shard-*/line-000002.err.*"))) == 2
    record = next(store.glob("round-*/shard-*/line-000002.err.2")).read_text()
    assert "oops" in record, "the error record keeps the tail of stderr"


def test_a_rerun_after_the_master_crashed_resumes_the_round(tmp_path, procs):
    tasks = tmp_path / "tasks.txt"
    tasks.write_text("".join(f"{i}\n" for i in range(8)))
    store = tmp_path / "s"
    go = tmp_path / "go"  # the last task waits for it, so the master cannot finish first
    command = ("sh", "-c", f'test "$1" != 7 || while [ ! -e {go} ]; do sleep 0.05; done; echo "out:$1"',
               "sh", "{}")
    first = run(procs, store, tasks, *command, name="first")
    pair = [worker(procs, store, n, "--worker_max_idle_secs=60") for n in (1, 2)]  # one may wait on 7
    wait_for(lambda: len(list(store.glob("round-*/shard-*/*.out"))) == 7, 60, "seven tasks done")
    first.signal(signal.SIGKILL)  # the master dies before the end
    first.wait(10)
    go.touch()
    assert not (store / "STOP").exists()
    again = run(procs, store, tasks, *command, name="again")
    assert again.wait(60) == 0, again.tail()
    assert split_log(again)[0] == [f"out:{i}" for i in range(8)]
    assert [p.name for p in store.glob("round-*")] == ["round-000001"], "the same round, resumed"
    assert [w.wait(30) for w in pair] == [0, 0]


def test_a_tampered_command_is_refused_and_nothing_runs(tmp_path, procs):
    tasks, store, marker = tmp_path / "tasks.txt", tmp_path / "s", tmp_path / "pwned"
    tasks.write_text("x\n")
    main = run(procs, store, tasks, "echo", "out:{}", flags=("--max_attempts=1",))
    wait_for(lambda: list(store.glob("round-*/SEALED")), 30, "the round sealed")
    path = next(store.glob("round-*/shard-*/line-000001.in"))
    head = path.read_bytes().partition(b"\n\n")[0]
    path.write_bytes(head + b"\n\n" + json.dumps(["touch", str(marker)]).encode())
    one = worker(procs, store, 1)
    assert main.wait(60) == 1, main.tail()
    assert not marker.exists(), "the forged argv never ran"
    assert any("HMAC does not match" in line for line in split_log(main)[1])
    assert one.wait(30) == 0


def test_a_forged_key_file_is_not_trusted(tmp_path, procs):
    tasks, store = tmp_path / "tasks.txt", tmp_path / "s"
    tasks.write_text("x\n")
    main = run(procs, store, tasks, "echo", "out:{}", flags=("--max_attempts=1",))
    wait_for(lambda: list(store.glob("round-*/SEALED")), 30, "the round sealed")
    (store / "KEY").chmod(0o644)  # readable by others: a key anyone may have read
    one = worker(procs, store, 1)
    assert main.wait(60) == 1
    assert any("not trusted as the run's key" in line for line in split_log(main)[1])
    assert one.wait(30) == 0


@pytest.mark.parametrize("args, problem", [
    (["run", "S", "--tasks", "t"], "put it after --"),
    (["run", "S", "--", "echo"], "--tasks FILE is missing"),
    (["run", "--tasks", "t", "--", "echo"], "STORE is missing"),
    (["run", "S", "--tasks", "t", "--local-workers", "x", "--", "echo"], "must be a number"),
    (["worker"], "STORE is missing"),
])
def test_usage_errors_exit_2_and_say_what_is_missing(args, problem, capsys):
    from fsmw.cli import main
    assert main(args) == 2
    assert problem in capsys.readouterr().err


def test_a_tasks_file_without_tasks_is_one_clear_error(tmp_path, capsys):
    from fsmw.cli import main
    (tmp_path / "t").write_text("\n  \n")
    assert main(["run", str(tmp_path / "s"), "--tasks", str(tmp_path / "t"), "--", "echo"]) == 1
    assert f"{tmp_path / 't'} holds no task" in capsys.readouterr().err
    assert not (tmp_path / "s").exists(), "nothing was made for a run that cannot start"


def test_fsmw_worker_takes_the_worker_flags_and_exit_codes(tmp_path, procs):
    store = tmp_path / "s"
    store.mkdir()
    idle = procs.start("idle", FSMW + ["worker", str(store), "--worker_max_idle_secs=0.5"])
    assert idle.wait(30) == 3, "IDLE_TIMEOUT, as fsmw.Worker"
    bad = procs.start("bad", FSMW + ["worker", str(store), "--no_such_flag=1"])
    assert bad.wait(30) == 2
    helped = procs.start("help", FSMW + ["worker", "--help"])
    assert helped.wait(30) == 0 and "--lease_secs" in helped.text() and "--worker_id" in helped.text()


def test_progress_goes_to_stderr_as_the_masters_does(tmp_path, procs):
    tasks = tmp_path / "tasks.txt"
    tasks.write_text("a\nb\n")
    main = procs.start("run", FSMW + ["run", str(tmp_path / "s"), "--tasks", str(tasks), "--progress",
                                      "--progress_secs=0.05", "--local-workers", "1", "--", "echo", "out:{}"])
    assert main.wait(60) == 0
    assert any(line.startswith("round 1 ") and "2/2" in line for line in split_log(main)[1])


def test_a_run_stopped_from_outside_exits_1_and_says_so(tmp_path, procs):
    tasks, store = tmp_path / "tasks.txt", tmp_path / "s"
    tasks.write_text("a\nb\n")
    main = run(procs, store, tasks, "echo", "out:{}")
    wait_for(lambda: list(store.glob("round-*/SEALED")), 30, "the round sealed")
    assert procs.start("stop", FSMW + ["stop", str(store)]).wait(30) == 0
    assert main.wait(60) == 1
    assert any("2 tasks: 0 done, 0 failed, 2 not run" in line and "stopped from outside" in line
               for line in split_log(main)[1])


def test_a_fifo_in_place_of_an_output_fails_that_task_and_blocks_nothing(tmp_path, procs):
    tasks, store = tmp_path / "tasks.txt", tmp_path / "s"
    tasks.write_text("x\n")
    main = run(procs, store, tasks, "echo", "out:{}")
    wait_for(lambda: list(store.glob("round-*/SEALED")), 30, "the round sealed")
    os.mkfifo(next(store.glob("round-*/shard-*")) / "line-000001.out")
    assert main.wait(30) == 1
    assert any("line-000001" in line and "not a regular file" in line for line in split_log(main)[1])


def test_a_closed_stdout_ends_the_run_cleanly(tmp_path):
    tasks = tmp_path / "tasks.txt"
    tasks.write_text("".join(f"{i}\n" for i in range(300)))
    shell = (f"{sys.executable} -m fsmw run {tmp_path / 's'} --tasks {tasks} --local-workers 2 "
             f"--progress=false -- echo out:{{}} 2>{tmp_path / 'err'} | head -1")
    got = subprocess.run(["sh", "-c", shell], capture_output=True, text=True, timeout=60)
    assert got.stdout == "out:0\n"
    err = (tmp_path / "err").read_text()
    assert "stdout was closed" in err or "300 done" in err  # closed early, or read to the end first


def test_use_tmp_checks_the_claims_task_not_the_files(tmp_path, procs):
    tasks, store = tmp_path / "tasks.txt", tmp_path / "s"
    tasks.write_text("a\nb\n")
    main = run(procs, store, tasks, "echo", "out:{}", flags=("--max_attempts=1",))
    wait_for(lambda: list(store.glob("round-*/SEALED")), 30, "the round sealed")
    shard = next(store.glob("round-*/shard-*"))
    (shard / "line-000001.in").write_bytes((shard / "line-000002.in").read_bytes())
    one = worker(procs, store, 1, "--use_tmp", "--max_attempts=1")
    assert main.wait(60) == 1
    out, err = split_log(main)
    assert out == ["out:b"], "b ran once, under its own name"
    assert any("line-000001" in line and "HMAC does not match" in line for line in err)
    assert one.wait(30) == 0


def test_sigterm_to_a_worker_kills_its_command_and_exits_4(tmp_path, procs):
    tasks, store, pid_file = tmp_path / "tasks.txt", tmp_path / "s", tmp_path / "pid"
    tasks.write_text("x\n")
    main = run(procs, store, tasks, "sh", "-c", f'echo $$ > {pid_file}; trap "" TERM INT; sleep 60')
    one = worker(procs, store, 1)
    pid = int(wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(), 30, "the command"))
    one.signal(signal.SIGTERM)
    assert one.wait(30) == 4
    wait_for(lambda: not os.path.exists(f"/proc/{pid}") or "Z" in Path(f"/proc/{pid}/stat").read_text()
             .split()[2], 10, "the command killed")
    main.signal(signal.SIGTERM)
    main.wait(30)


def test_a_fifo_as_an_input_fails_its_task_even_with_use_tmp(tmp_path, procs):
    tasks, store = tmp_path / "tasks.txt", tmp_path / "s"
    tasks.write_text("a\nb\n")
    main = run(procs, store, tasks, "echo", "out:{}", flags=("--max_attempts=1",))
    wait_for(lambda: list(store.glob("round-*/SEALED")), 30, "the round sealed")
    fifo = next(store.glob("round-*/shard-*")) / "line-000001.in"
    fifo.unlink()
    os.mkfifo(fifo)
    one = worker(procs, store, 1, "--use_tmp", "--max_attempts=1")
    assert main.wait(60) == 1
    out, err = split_log(main)
    assert out == ["out:b"] and any("line-000001" in line for line in err)
    assert one.wait(30) == 0


def test_ctrl_c_exits_130_and_leaves_the_round_open_for_a_rerun(tmp_path, procs):
    tasks, store = tmp_path / "tasks.txt", tmp_path / "s"
    tasks.write_text("a\n")
    main = run(procs, store, tasks, "echo", "out:{}")
    wait_for(lambda: list(store.glob("round-*/SEALED")), 30, "the round sealed")
    main.signal(signal.SIGINT)
    assert main.wait(30) == 130
    assert any("interrupted; the round stays open" in line for line in split_log(main)[1])
    assert not (store / "STOP").exists()
