"""Claims: exclusive creation, owner facts, fcntl witness, fencing, heartbeat."""

import errno
import fcntl
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor

import pytest

from fsmw._core import claims as _claims, token as _token
from fsmw._core.records import parse_record
from fsmw._core.rounddir import RoundDir
from fsmw._core.system import REAL_FS, Clock, FileSystem
from fsmw._core import heartbeat as _heartbeat


def in_dir(path, fs=REAL_FS):
    """A round directory at ``path`` (claims and tokens live in one)."""
    return RoundDir(str(path), 1, fs)


def _race(path, index, start, done, won):
    """One racer: link at the same moment as the others, hold what it won until all have tried."""
    token = _token.Token(in_dir(path.parent), {"host": "h"})
    start.wait()
    claim = token.claim(path, "t", 1)
    won[index] = claim is not None
    done.wait()
    if claim is not None:
        claim.release()
    token.close()


def _probe(path):
    return _claims.holder_gone(path)


def probe_elsewhere(path):
    """Ask from another process: fcntl locks never conflict within one process."""
    with ProcessPoolExecutor(1) as pool:
        return pool.submit(_probe, path).result(timeout=30)


def test_exactly_one_of_many_processes_wins_a_generation(tmp_path):
    path, racers = tmp_path / "t.claim.1", 8
    ctx = multiprocessing.get_context()
    start, done = ctx.Barrier(racers, timeout=30), ctx.Barrier(racers, timeout=30)
    won = ctx.Array("b", racers)
    procs = [ctx.Process(target=_race, args=(path, i, start, done, won)) for i in range(racers)]
    try:
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join(40)
        assert [proc.exitcode for proc in procs] == [0] * racers
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.kill()
                proc.join(10)
    assert sum(won) == 1
    assert os.listdir(tmp_path) == []  # released claims and closed tokens leave nothing


def test_token_claims_link_one_inode_that_tells_the_owner_and_is_locked(tmp_path):
    token = _token.Token(in_dir(tmp_path), {"host": "h", "pid": 1})
    first = token.claim(tmp_path / "a.claim.1", "a", 1)
    first.close()
    second = token.claim(tmp_path / "b.claim.3", "b", 3)
    assert first.ino == second.ino == os.stat(tmp_path / "a.claim.1").st_ino  # no inode per task
    assert probe_elsewhere(tmp_path / "b.claim.3") is False
    # Reading it from this process would drop our own fcntl lock (POSIX rule),
    # which is why the worker never opens its own claim a second time.
    facts = parse_record((tmp_path / "b.claim.3").read_bytes())
    assert (facts["host"], facts["task"], facts["attempt"]) == ("h", "b", "3") and facts["started"]
    token.close()
    assert probe_elsewhere(tmp_path / "b.claim.3") is True  # a dead worker's claims are unlocked
    assert sorted(os.listdir(tmp_path)) == ["a.claim.1", "b.claim.3"]


def test_a_lost_generation_returns_none_and_an_nfs_retransmitted_win_counts(tmp_path):
    class Retransmitting(FileSystem):
        @staticmethod
        def link(src, dst):  # the reply to a LINK that did happen got lost
            os.link(src, dst)
            raise FileExistsError(errno.EEXIST, "File exists")

    _claims.try_claim(tmp_path / "t.claim.1", "t", 1, b"other").close()
    token = _token.Token(in_dir(tmp_path, Retransmitting()), {})
    assert token.claim(tmp_path / "t.claim.1", "t", 1) is None
    assert token.claim(tmp_path / "t.claim.2", "t", 2) is not None
    token.close()


def test_token_rotates_before_the_link_limit(tmp_path):
    class ThreeLinks(_token.Token):
        MAX_LINKS = 3

    token = ThreeLinks(in_dir(tmp_path), {})
    claims = [token.claim(tmp_path / f"t{i}.claim.1", f"t{i}", 1) for i in range(5)]
    # The token's own name counts as a link: two claims per token, then a new one.
    assert [c.ino for c in claims].count(claims[0].ino) == 2
    assert len({c.ino for c in claims}) == 3
    assert os.stat(tmp_path / "t0.claim.1").st_nlink == 2  # the retired token's name is gone
    token.close()
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")]


@pytest.mark.parametrize("code", [errno.EMLINK, errno.ENOSPC])
def test_token_rotates_when_the_file_system_refuses_another_link(tmp_path, code):
    class Limited(FileSystem):
        @staticmethod
        def link(src, dst):  # the old token has reached the file system's limit
            if first is not None and os.stat(src).st_ino == first.ino:
                raise OSError(code, os.strerror(code))
            os.link(src, dst)

    first = None
    token = _token.Token(in_dir(tmp_path, Limited()), {})
    first = token.claim(tmp_path / "a.claim.1", "a", 1)
    second = token.claim(tmp_path / "b.claim.1", "b", 1)
    assert second is not None and second.ino != first.ino
    token.close()


def test_a_real_enospc_is_not_hidden(tmp_path):
    class Full(FileSystem):
        @staticmethod
        def link(src, dst):
            raise OSError(errno.ENOSPC, "No space left on device")

    token = _token.Token(in_dir(tmp_path, Full()), {})
    with pytest.raises(OSError):
        token.claim(tmp_path / "a.claim.1", "a", 1)
    token.close()


def test_holder_gone_when_the_lock_is_free(tmp_path):
    path = tmp_path / "t.claim.1"
    path.write_bytes(b"left by a dead worker")
    assert _claims.holder_gone(path) is True


def test_broken_claim_fences_its_holder_and_its_name_stays(tmp_path):
    token = _token.Token(in_dir(tmp_path), {})
    path = tmp_path / "t.claim.1"
    claim = token.claim(path, "t", 1)
    assert claim.still_mine()
    _claims.fence(path, b"broken_by: judge\n")
    assert claim.touch() is False
    assert claim.fenced
    assert claim.release() is False
    assert path.read_bytes() == b"broken_by: judge\n"
    # The generation stays used: nobody can win it again from an old listing.
    assert token.claim(path, "t", 1) is None
    token.close()


def test_removed_claim_fences_its_holder(tmp_path):
    path = tmp_path / "t.claim.1"
    claim = _claims.try_claim(path, "t", 1, b"")
    os.unlink(path)
    path.write_bytes(b"someone else")  # a new file under the same name
    assert claim.still_mine() is False
    assert claim.release() is False
    assert path.read_bytes() == b"someone else"


def test_close_keeps_the_claim_and_release_removes_it(tmp_path):
    kept, released = tmp_path / "a.claim.1", tmp_path / "b.claim.1"
    _claims.try_claim(kept, "a", 1, b"").close()
    assert kept.exists() and probe_elsewhere(kept) is True  # lock gone with the fd
    assert _claims.try_claim(released, "b", 1, b"").release() is True
    assert not released.exists()


class _Log:
    """Collects the warnings a heartbeat logs."""

    def __init__(self):
        self.warnings = []

    def warning(self, msg, *args):
        self.warnings.append(msg % args)


def _beating(claim, interval, log=None):
    beat = _heartbeat.Heartbeat(interval, Clock(), log or _Log())
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
    log = _Log()
    _claims.fence(path, b"broken\n")
    beat = _beating(claim, 0.01, log)
    try:
        deadline = time.monotonic() + 5
        while not log.warnings and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.05)  # further beats must not report it again
    finally:
        beat.close()
    assert len(log.warnings) == 1 and "t.claim.1 is no longer ours" in log.warnings[0]
    claim.close()


@pytest.mark.parametrize("code", [errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP])
def test_unsupported_locks_are_reported_once_and_claims_still_work(tmp_path, caplog, code):
    class NoLocks(FileSystem):
        @staticmethod
        def lockf(fd, op):
            raise OSError(code, os.strerror(code))

    fs = NoLocks()
    first = _claims.try_claim(tmp_path / "a.claim.1", "a", 1, b"", fs=fs)
    second = _claims.try_claim(tmp_path / "b.claim.1", "b", 1, b"", fs=fs)
    assert first is not None and second is not None
    assert _claims.try_claim(tmp_path / "a.claim.1", "a", 1, b"", fs=fs) is None
    assert _claims.holder_gone(tmp_path / "a.claim.1", fs=fs) is None
    warnings = [r for r in caplog.records if "fcntl locks do not work" in r.getMessage()]
    assert len(warnings) == 1
    first.release()
    second.release()


def test_busy_lock_during_probe_is_retried(tmp_path):
    calls = []

    class BusyTwice(FileSystem):
        @staticmethod
        def lockf(fd, op):
            calls.append(op)
            if len(calls) <= 2:
                raise OSError(errno.EAGAIN, "busy")
            return fcntl.lockf(fd, op)

    claim = _claims.try_claim(tmp_path / "t.claim.1", "t", 1, b"", fs=BusyTwice())
    assert len(calls) == 3
    assert probe_elsewhere(tmp_path / "t.claim.1") is False
    claim.release()
