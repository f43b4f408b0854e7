"""One master per store: a live master keeps a second one out; a dead one is taken over."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading

import pytest

import fsmw
from fsmw._core.system import FileSystem
from support.clock import FakeClock
from support.procs import wait_for


class Two(fsmw.Master):
    gate = None

    def create_input_files(self):
        if self.gate is not None:
            self.gate.wait(30)


def claim_left_by(store, host, pid):
    store.mkdir(parents=True, exist_ok=True)
    (store / "master.claim.1").write_text(f"role: master\nhost: {host}\npid: {pid}\n")


def dead_pid():
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    return int(done.stdout)


def test_a_second_master_fails_at_once_naming_the_live_one(tmp_path):
    first = Two(tmp_path / "store", progress=False)
    first.gate = threading.Event()
    summary = []
    thread = threading.Thread(target=lambda: summary.append(first.run()))
    thread.start()
    try:
        wait_for(lambda: list((tmp_path / "store").glob("round-*")), 20, "the first master's round")
        with pytest.raises(fsmw.StoreError, match=rf"has a live master: host \S+, pid {os.getpid()}"):
            Two(tmp_path / "store", progress=False).run()
    finally:
        first.gate.set()
        thread.join(30)
    assert summary and summary[0].rounds == 1
    assert [p.name for p in (tmp_path / "store").glob("round-*")] == ["round-000001"]  # untouched
    assert not list((tmp_path / "store").glob("master.claim.*"))  # given back on return


def test_a_dead_master_on_this_host_is_taken_over_at_once(tmp_path):
    store = tmp_path / "store"
    claim_left_by(store, socket.gethostname().split(".")[0], dead_pid())
    assert Two(store, progress=False, clock=FakeClock()).run().rounds == 1
    assert "a new master took the store over" in (store / "master.err.1").read_text()


class NoLocks(FileSystem):
    locks_ok = False


def test_elsewhere_without_locks_a_silent_master_is_taken_over_after_a_lease(tmp_path):
    store = tmp_path / "store"
    claim_left_by(store, "elsewhere", 1)
    clock = FakeClock()
    assert Two(store, progress=False, clock=clock, fs=NoLocks(), lease_secs=30).run().rounds == 1
    assert clock.secs >= 30 and (store / "master.err.1").exists()


def test_elsewhere_without_locks_a_master_whose_heartbeat_moves_keeps_the_store(tmp_path):
    store = tmp_path / "store"
    claim_left_by(store, "elsewhere", 1)
    claim = store / "master.claim.1"
    beats = FakeClock(on_sleep=lambda secs: os.utime(claim, ns=(0, claim.stat().st_mtime_ns + 10**9)))
    with pytest.raises(fsmw.StoreError, match="has a live master: host elsewhere, pid 1"):
        Two(store, progress=False, clock=beats, fs=NoLocks(), lease_secs=30).run()
    assert beats.secs < 30 and not list(store.glob("round-*"))


def test_a_master_that_was_taken_over_stops_at_its_next_poll(tmp_path):
    class Waiting(fsmw.Master):
        def create_input_files(self):
            self.create_input_file("a", "1")  # nobody works on it

    def taken_over(secs):
        (claim,) = (tmp_path / "store").glob("master.claim.*")
        os.rename(claim, claim.with_name("gone"))
        claim.write_text("broken_by: another master\n")

    clock = FakeClock(on_sleep=taken_over)
    with pytest.raises(fsmw.StoreError, match="taken over by another master"):
        Waiting(tmp_path / "store", progress=False, clock=clock).run()
    assert clock.slept and clock.secs < 1  # at its next poll, not after retrying for a lease
