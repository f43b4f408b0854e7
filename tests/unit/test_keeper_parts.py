"""The keeper's parts, one at a time: reasons to abandon, the nudge, the keeper's end of a worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

import fsmw
from fsmw._core.shard import LEGACY, Shard
from fsmw._core.token import Token
from fsmw._worker import abandon as _abandon
from fsmw._worker.keeper import Keeper, _round_and_shard
from fsmw._worker.keeper_main import Config, KeeperLoop, worker_stopped
from fsmw._worker.stopping import StopSwitch, TaskAbandoned
from support.procs import wait_for
from support.stores import make_round, names, tasks_dir

FACTS = {"role": "worker", "host": "h", "pid": 4242, "worker_id": 7, "job_id": None}


@pytest.fixture
def held(tmp_path):
    """A round with task ``a`` claimed (generation 1) by a token, as a worker holds it (shard 0)."""
    store = make_round(tmp_path / "store", ["a", "b"])
    rd = store.round(1).shard(0)
    token = Token(rd, FACTS)
    claim = token.claim(rd.file("a", "claim", 1), "a", 1)
    yield store, rd, token, claim
    token.close()


def test_why_not_needed_names_each_reason_and_asks_for_stop_only_if_told(held):
    store, rd, token, claim = held
    stop = str(store.stop_file)
    assert _abandon.why_not_needed(rd, claim, stop) is None
    store.stop_file.write_text("stop\n")
    assert _abandon.why_not_needed(rd, claim, stop) == _abandon.STOPPED
    assert _abandon.why_not_needed(rd, claim, None) is None  # on_stop="finish"
    (tasks_dir(store.root) / "a.out").write_text("x")
    assert _abandon.why_not_needed(rd, claim, stop) == _abandon.PUBLISHED
    rd.break_claim("a", 1, 9.0, "judge", 3)  # fenced: the first thing that counts
    assert _abandon.why_not_needed(rd, claim, stop) == _abandon.FENCED


def test_abandoning_writes_a_dup_and_keeps_the_claim_or_on_stop_gives_it_back(held):
    store, rd, token, claim = held
    (tasks_dir(store.root) / "a.out").write_text("x")
    assert _abandon.abandon(rd, claim, _abandon.PUBLISHED, FACTS) is False
    (dup,) = names(rd.path, "a.dup.*")
    text = (tasks_dir(store.root) / dup).read_text()
    assert "reason: abandoned: a result was already published" in text and "attempt: 1" in text
    assert (tasks_dir(store.root) / "a.claim.1").exists() and not names(rd.path, "a.err.*")
    other = token.claim(rd.file("b", "claim", 1), "b", 1)
    assert _abandon.abandon(rd, other, _abandon.STOPPED, FACTS) is True
    assert names(rd.path, "b.*") == ["b.in"]


def test_the_nudge_abandons_a_task_only_inside_process_file_and_only_if_the_check_agrees():
    switch = StopSwitch()
    nudge = lambda: os.kill(os.getpid(), signal.SIGUSR2)  # noqa: E731
    with switch.signals_handled():
        assert switch.handling
        nudge()  # between tasks: nothing happens
        switch.run_abortable(nudge, check=lambda: None)  # still needed: nothing happens
        with pytest.raises(TaskAbandoned, match="published"):
            switch.run_abortable(nudge, check=lambda: "a result was already published")
    assert not switch.is_set() and not switch.handling  # a nudge is no stop request


def config(store, pid, **changes):
    values = dict(store=str(store.root), pid=pid, interval=60.0, grace=60.0, signals=False,
                  watch_stop=True, max_attempts=2, facts=FACTS)
    values.update(changes)
    return Config(**values)


def run_keeper(loop, lines):
    """Feed ``lines`` to the keeper, then EOF (its worker has gone); its exit status."""
    read_end, write_end = os.pipe()
    os.write(write_end, "".join(lines).encode())
    os.close(write_end)
    try:
        return loop.run(read_end)
    finally:
        os.close(read_end)


def hold_line(claim, round_number=1, shard=0):
    return f"h {round_number} {shard} {claim.gen} {claim.ino} 0.0 {claim.task}\n"


def test_a_worker_that_dies_holding_a_claim_has_its_attempt_recorded_and_counted(held):
    store, rd, token, claim = held
    assert run_keeper(KeeperLoop(config(store, 4242)), [hold_line(claim)]) == 0
    record = (tasks_dir(store.root) / "a.err.1").read_text()
    assert "error: worker process 4242 died while running the task (claim a.claim.1)" in record
    assert "worker_id: 7" in record and "attempt: 1" in record
    view = rd.scan()
    assert "a" in view.pending() and view.next_gen("a") == 2  # retried at once
    claim2 = token.claim(rd.file("a", "claim", 2), "a", 2)
    run_keeper(KeeperLoop(config(store, 4242)), [hold_line(claim2)])
    assert "attempts: 2" in (tasks_dir(store.root) / "a.failed").read_text()  # max_attempts=2


def test_a_worker_that_dies_holding_a_claim_in_a_later_shard_has_it_recorded_in_that_shard(held):
    store = held[0]
    later = store.round(1).shard(1)
    later.create()
    later.write_input("c", b"x", False)
    other = Token(later, FACTS)
    try:
        held_c = other.claim(later.file("c", "claim", 1), "c", 1)
        assert run_keeper(KeeperLoop(config(store, 4242)), [hold_line(held_c, shard=1)]) == 0
    finally:
        other.close()
    record = (tasks_dir(store.root, shard=1) / "c.err.1").read_text()
    assert "worker process 4242 died while running the task (claim c.claim.1)" in record
    assert names(tasks_dir(store.root), "c.*") == []  # nothing of c's in shard 0
    assert later.scan().next_gen("c") == 2


def test_the_keeper_line_names_the_round_and_shard_of_a_claim_path():
    assert _round_and_shard("/s/round-000003/shard-000002/t.claim.1") == (3, 2)
    assert _round_and_shard("/s/round-000003/shard-000000/t.claim.4") == (3, 0)
    assert _round_and_shard("/s/round-000007/t.claim.1") == (7, LEGACY)  # a round before shards


@pytest.mark.parametrize("before_eof", ["dropped", "recorded", "stop", "ending"])
def test_a_worker_that_ended_its_attempt_or_was_stopped_has_no_failure_recorded(held, before_eof,
                                                                                 monkeypatch):
    store, rd, token, claim = held
    loop = KeeperLoop(config(store, 4242))
    lines = [hold_line(claim)]
    if before_eof == "dropped":
        lines.append("d\n")
    elif before_eof == "recorded":  # the worker wrote its own error record, then died
        rd.record_failure("a", 1, {"error": "its own"}, "", 3)
    elif before_eof == "stop":
        store.stop_file.write_text("stop\n")
    else:
        loop.ending = True  # the keeper got SIGTERM with its job
    recorded = []
    monkeypatch.setattr(Shard, "record_failure", lambda self, *a, **k: recorded.append(a))
    run_keeper(loop, lines)
    assert recorded == []  # the keeper recorded no death
    err = tasks_dir(store.root) / "a.err.1"
    assert not err.exists() or "its own" in err.read_text()
    if before_eof in ("stop", "ending"):
        assert names(rd.path, "a.*") == ["a.in"]  # given back


def test_worker_stopped_tells_a_sigstopped_process_from_a_running_one():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert not worker_stopped(child.pid)
        child.send_signal(signal.SIGSTOP)
        wait_for(lambda: worker_stopped(child.pid), 10, "state T in /proc")
        child.send_signal(signal.SIGCONT)
        wait_for(lambda: not worker_stopped(child.pid), 10, "the child running again")
    finally:
        child.kill()
        child.wait()
    assert not worker_stopped(child.pid)  # gone: /proc cannot tell, and EOF decides


def test_on_stop_is_checked_and_has_one_flag():
    assert fsmw.Options().on_stop == "interrupt"
    assert fsmw.Options(on_stop="finish").on_stop == "finish"
    with pytest.raises(ValueError, match="on_stop must be one of interrupt, finish"):
        fsmw.Options(on_stop="later")
    from fsmw import flags

    assert flags.FLAGS.FlagDict()["on_stop"].default == "interrupt" and "on_stop" in flags.WORKER_FLAGS


class Recorder:
    """A stand-in for the heartbeat thread: records what it is asked to hold."""

    def __init__(self):
        self.held, self.closed = [], False

    def hold(self, claim):
        self.held.append(claim)

    def close(self):
        self.closed = True


class Log:
    def __init__(self):
        self.warnings = []

    def warning(self, msg, *args):
        self.warnings.append(msg % args)

    def debug(self, *args):
        pass


def keeper_for(store, fallback, log):
    return Keeper.for_worker(fsmw.Options(), store.root, FACTS, False, fallback, log)


def test_without_a_keeper_process_the_heartbeat_thread_takes_over(held, monkeypatch):
    store, rd, token, claim = held
    monkeypatch.setattr(sys, "executable", str(store.root / "no-such-python"))
    fallback, log = Recorder(), Log()
    keeper = keeper_for(store, fallback, log)
    keeper.hold(claim)
    keeper.hold(None)
    keeper.close()
    assert fallback.held == [claim, None] and fallback.closed
    assert any("cannot start a keeper process" in w for w in log.warnings)
    assert any("heartbeats come from a thread" in w for w in log.warnings)


def test_a_keeper_killed_from_outside_is_reaped_and_replaced_at_the_next_message(held):
    store, rd, token, claim = held
    fallback, log = Recorder(), Log()
    keeper = keeper_for(store, fallback, log)
    try:
        keeper.hold(claim)
        first = keeper.pid
        dead = keeper._proc
        os.kill(first, signal.SIGKILL)
        wait_for(lambda: dead.poll() is not None, 10, "the keeper to die")
        keeper.hold(None)  # EPIPE: noticed, the dead keeper reaped, another one started
        keeper.hold(claim)
        assert keeper.pid not in (None, first) and fallback.held == []
        assert dead.returncode == -signal.SIGKILL
    finally:
        keeper.hold(None)
        keeper.close()
    assert any("is gone" in w for w in log.warnings)


def test_the_keepers_pipe_holds_a_megabyte(held):
    """Room for what a worker writes between two of the keeper's reads (docs/performance.md)."""
    import fcntl
    from fsmw._worker.keeper import PIPE_BYTES
    store, rd, token, claim = held
    keeper = keeper_for(store, Recorder(), Log())
    try:
        keeper.hold(claim)
        size = fcntl.fcntl(keeper._fd, getattr(fcntl, "F_GETPIPE_SZ", 1032))
        with open("/proc/sys/fs/pipe-max-size") as f:
            allowed = int(f.read())
        assert size >= min(PIPE_BYTES, allowed)
    finally:
        keeper.hold(None)
        keeper.close()
