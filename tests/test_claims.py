"""Claims: exclusive creation, owner facts, fcntl witness, fencing, heartbeat."""

import errno
import fcntl
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor

import pytest

from fsmw import _claims
from fsmw._owner import parse_record


@pytest.fixture(autouse=True)
def locks_on(monkeypatch):
    monkeypatch.setattr(_claims, "_locks_supported", True)
    monkeypatch.setattr(_claims, "_locks_broken_reported", False)


def _race(path):
    claim = _claims.try_claim(path, "t", 1, b"owner")
    if claim is None:
        return 0
    time.sleep(0.05)
    claim.release()
    return 1


def _probe(path):
    return _claims.holder_gone(path)


def probe_elsewhere(path):
    """Ask from another process: fcntl locks never conflict within one process."""
    with ProcessPoolExecutor(1) as pool:
        return pool.submit(_probe, path).result(timeout=30)


def test_exactly_one_of_many_processes_wins_a_generation(tmp_path):
    path = tmp_path / "t.claim.1"
    with ProcessPoolExecutor(8) as pool:
        wins = list(pool.map(_race, [path] * 8))
    assert sum(wins) == 1
    assert not path.exists()


def test_claim_records_its_owner_and_is_locked(tmp_path):
    path = tmp_path / "t.claim.2"
    claim = _claims.try_claim(path, "t", 2, b"host: h\npid: 1\n")
    assert probe_elsewhere(path) is False
    # Reading it from this process would drop our own fcntl lock (POSIX rule),
    # which is why the worker never opens its own claim a second time.
    assert parse_record(path.read_bytes())["host"] == "h"
    claim.release()
    assert not path.exists()


def test_holder_gone_when_the_lock_is_free(tmp_path):
    path = tmp_path / "t.claim.1"
    path.write_bytes(b"left by a dead worker")
    assert _claims.holder_gone(path) is True


def test_broken_claim_fences_its_holder_and_stays(tmp_path):
    path = tmp_path / "t.claim.1"
    claim = _claims.try_claim(path, "t", 1, b"")
    assert claim.still_mine()
    _claims.break_claim(path)
    assert claim.touch() is False
    assert claim.fenced
    assert claim.release() is False
    assert path.exists() and path.stat().st_mode & 0o777 == 0
    # The generation stays used: nobody can win it again from an old listing.
    assert _claims.try_claim(path, "t", 1, b"") is None


def test_removed_claim_fences_its_holder(tmp_path):
    path = tmp_path / "t.claim.1"
    claim = _claims.try_claim(path, "t", 1, b"")
    os.unlink(path)
    path.write_bytes(b"someone else")  # a new file under the same name
    assert claim.still_mine() is False
    assert claim.release() is False
    assert path.read_bytes() == b"someone else"


def test_close_keeps_the_claim_file_and_release_removes_it(tmp_path):
    kept, released = tmp_path / "a.claim.1", tmp_path / "b.claim.1"
    _claims.try_claim(kept, "a", 1, b"").close()
    assert kept.exists() and probe_elsewhere(kept) is True  # lock gone with the fd
    assert _claims.try_claim(released, "b", 1, b"").release() is True
    assert not released.exists()


def _beating(claim, interval, on_fenced=None):
    beat = _claims.Heartbeat(interval, on_fenced)
    beat.hold(claim)
    return beat


def test_heartbeat_moves_mtime_of_the_held_claim_only(tmp_path):
    path, other = tmp_path / "t.claim.1", tmp_path / "u.claim.1"
    claim = _claims.try_claim(path, "t", 1, b"")
    dropped = _claims.try_claim(other, "u", 1, b"")
    os.utime(path, (1, 1))
    os.utime(other, (1, 1))
    beat = _beating(dropped, 0.01)
    beat.hold(claim)  # the worker moved on to another task
    try:
        deadline = time.monotonic() + 5
        while os.stat(path).st_mtime < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        beat.close()
    assert os.stat(path).st_mtime > 2
    assert os.stat(other).st_mtime == 1
    claim.release()
    dropped.release()


def test_heartbeat_reports_fencing_once(tmp_path):
    path = tmp_path / "t.claim.1"
    claim = _claims.try_claim(path, "t", 1, b"")
    fenced = []
    _claims.break_claim(path)
    beat = _beating(claim, 0.01, fenced.append)
    try:
        deadline = time.monotonic() + 5
        while not fenced and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.05)  # further beats must not report it again
    finally:
        beat.close()
    assert fenced == [claim]
    claim.close()


@pytest.mark.parametrize("code", [errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP])
def test_unsupported_locks_are_reported_once_and_claims_still_work(tmp_path, monkeypatch, caplog, code):
    def no_locks(fd, op):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(fcntl, "lockf", no_locks)
    first = _claims.try_claim(tmp_path / "a.claim.1", "a", 1, b"")
    second = _claims.try_claim(tmp_path / "b.claim.1", "b", 1, b"")
    assert first is not None and second is not None
    assert _claims.try_claim(tmp_path / "a.claim.1", "a", 1, b"") is None
    assert _claims.holder_gone(tmp_path / "a.claim.1") is None
    warnings = [r for r in caplog.records if "fcntl locks do not work" in r.getMessage()]
    assert len(warnings) == 1
    first.release()
    second.release()


def test_busy_lock_during_probe_is_retried(tmp_path, monkeypatch):
    calls = []
    real = fcntl.lockf

    def busy_twice(fd, op):
        calls.append(op)
        if len(calls) <= 2:
            raise OSError(errno.EAGAIN, "busy")
        return real(fd, op)

    monkeypatch.setattr(fcntl, "lockf", busy_twice)
    claim = _claims.try_claim(tmp_path / "t.claim.1", "t", 1, b"")
    monkeypatch.setattr(fcntl, "lockf", real)
    assert len(calls) == 3
    assert probe_elsewhere(tmp_path / "t.claim.1") is False
    claim.release()
