"""Claims: one lock file per task attempt, held with a heartbeat and fenced.

Protocol:
  * A claim is the name ``<task>.claim.<g>``; of all processes that try to
    create generation ``g`` exactly one succeeds, on a local disk and on
    NFSv3+/GlusterFS alike.  A worker claims by ``link``-ing its token (see
    :class:`Token`: one inode per worker and round, holding its owner facts
    and its fcntl lock) to that name, which fails with EEXIST for all but
    one, like an O_CREAT|O_EXCL create, but allocates no inode per task.
  * A claim stays when its attempt ends (published, failed or broken): it is
    the record that generation ``g`` was used, so a worker acting on an old
    listing that tries ``g`` again simply loses, and no re-check of the
    task's other files is needed after a win.  Only an interrupted holder
    removes its claim, to give the task back at once.
  * Breaking a stale claim and starting a backup copy both mean winning the
    next generation after every one the judge's listing shows, so two
    breakers can never both win.  The judge then renames a record of the
    break over the stale name (:func:`break_claim`): the name never goes
    missing, and it now points at another inode.
  * The holder touches its token (``futimens`` on its own descriptor) every
    ``lease_secs / 5`` from one heartbeat thread per worker while it holds a
    claim.  Before every heartbeat and before publishing it checks that the
    name still points at its inode (one ``stat``); if not, it is *fenced*: it
    stops heartbeating and never publishes nor removes the name.
  * fcntl is used as a witness, not as the mutual exclusion (the O_EXCL create
    is that).  An fcntl error other than "busy" (ENOLCK on NFS without lockd,
    ENOSYS/EOPNOTSUPP on Lustre without ``flock``) is logged once per process
    and the protocol carries on without locks.  Locks are taken with
    ``lockf`` only, never ``flock``, because the two conflict on NFS and
    GlusterFS.  A process never opens a claim of its own twice (closing any
    descriptor drops fcntl locks, see fasteners' notes).
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import secrets
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Mapping, Optional, Union

from ._atomic import unlink_quietly, write_temp
from ._owner import format_record, host_name, safe_host

log = logging.getLogger("fsmw.claims")

_BUSY = frozenset((errno.EACCES, errno.EAGAIN))
_GONE = frozenset((errno.ENOENT, errno.ESTALE))
_BAD_FD = frozenset((errno.EBADFD, errno.EBADF))
TOKEN_PREFIX = ".worker."
_locks_broken_reported = False
_locks_supported = True


def locks_supported() -> bool:
    """False once an fcntl call failed with anything but 'busy' in this process."""
    return _locks_supported


def _lock_unsupported(path: Union[str, Path], exc: OSError) -> None:
    global _locks_broken_reported, _locks_supported
    _locks_supported = False
    if not _locks_broken_reported:
        _locks_broken_reported = True
        log.warning("%s/%d: fcntl locks do not work on %s (%s); fsmw carries on with lock "
                    "files and leases only", host_name(), os.getpid(), os.path.dirname(path),
                    os.strerror(exc.errno or 0))


class Claim:
    """A claim this process holds: the name ``path`` linked to the inode ``ino``.

    ``fd`` is an open descriptor of that inode (for heartbeats and the fcntl
    witness); ``own_fd`` says whether the claim closes it (a claim won by
    :func:`try_claim`) or a :class:`Token` does.
    """

    def __init__(self, path: Union[str, Path], ino: int, fd: int, task: str, gen: int,
                 own_fd: bool) -> None:
        self.path = os.fspath(path)
        self.ino = ino
        self.fd = fd
        self.task = task
        self.gen = gen
        self.fenced = False
        self.kind = "claim"  # or "break" / "backup": how it was won (for the journal)
        self._own_fd = own_fd
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Claim({self.name!r}, fenced={self.fenced})"

    @property
    def name(self) -> str:
        return os.path.basename(self.path)

    def still_mine(self) -> bool:
        """False once the name no longer points at our inode (broken); one ``stat``."""
        if self.fenced:
            return False
        try:
            if os.stat(self.path).st_ino != self.ino:
                self.fenced = True
        except OSError as exc:
            if exc.errno not in _GONE:
                raise
            self.fenced = True
        return not self.fenced

    def touch(self) -> bool:
        """Heartbeat: refresh the claim's mtime; False once fenced."""
        with self._lock:
            if self.fd < 0 or not self.still_mine():
                return False
            try:
                os.utime(self.fd)
            except OSError as exc:
                if exc.errno in _BAD_FD:
                    # GlusterFS marks descriptors that held locks across a lost
                    # connection as bad (EBADFD); the name still tells whether the
                    # claim is ours, and touching by name keeps it alive.
                    os.utime(self.path)
                elif exc.errno in _GONE:
                    self.fenced = True
                else:
                    raise
            return not self.fenced

    def close(self) -> None:
        """The attempt has ended (published, failed or discarded): keep the name.

        The claim stays as the record that this generation was used, so a
        worker acting on an old listing cannot win it again.
        """
        with self._lock:
            self._close()

    def release(self) -> bool:
        """Give the task back (an interrupted attempt): remove the claim if still ours.

        The name is unlinked *before* the descriptor is closed: closing first
        would drop the fcntl lock while the claim still exists, and a judge
        trusting locks (``take_lockfile_existence_as_lock=False``) could take
        that for a dead holder.
        """
        with self._lock:
            removed = False
            if self.fd >= 0 and self.still_mine():
                unlink_quietly(self.path)
                removed = True
            self._close()
            return removed

    def _close(self) -> None:
        if self.fd >= 0 and self._own_fd:
            os.close(self.fd)  # drops the fcntl lock
        self.fd = -1


class Token:
    """A worker's claim token in one round directory: the inode its claims link to.

    ``.worker.<host>.<pid>.<hex>`` holds the worker's owner facts and, where
    fcntl works, the worker's write lock for as long as it lives.  Claiming a
    task is ``link(token, <task>.claim.<g>)``: exclusive like an O_EXCL
    create (EEXIST for all but one), but no new inode per task.  Before each
    link the current task, attempt and start time are written over the
    record (one ``pwrite``), so ``cat`` on a running claim tells who runs what
    since when.  A new token is started every ``MAX_LINKS`` claims, and
    sooner if the file system refuses another link (ext4 allows 65,000 links
    to an inode; GlusterFS answered ENOSPC after about 740).  The token's name is removed when the worker
    leaves the round; its claims keep the inode.
    """

    MAX_LINKS = 256
    RECORD_SIZE = 1024

    def __init__(self, directory: Union[str, Path], facts: Mapping[str, object]) -> None:
        self._dir = directory
        self._facts = format_record(facts)  # rendered once
        self._second, self._started = -1, b""
        self.fd = -1
        self._open()

    def _open(self) -> None:
        self.path = f"{self._dir}/{TOKEN_PREFIX}{safe_host()}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
        try:
            self._write(fd, "", 0)
            if _locks_supported:
                _lock(fd, self.path)
            self.ino = os.fstat(fd).st_ino
        except BaseException:
            os.close(fd)
            unlink_quietly(self.path)
            raise
        self.fd, self.links = fd, 1

    def _write(self, fd: int, task: str, gen: int) -> None:
        now = int(time.time())
        if now != self._second:  # the ISO time changes once a second at most
            self._second = now
            self._started = datetime.fromtimestamp(now, timezone.utc).isoformat().encode()
        record = b"task: %s\nattempt: %d\n%sstarted: %s\n" % (
            task.encode("utf-8", errors="replace"), gen, self._facts, self._started if task else b"")
        os.pwrite(fd, record.ljust(self.RECORD_SIZE - 1)[:self.RECORD_SIZE - 1] + b"\n", 0)

    def claim(self, path: Union[str, Path], task: str, gen: int) -> Optional[Claim]:
        """Try to win claim ``path``; None if another process has this generation."""
        if self.links >= self.MAX_LINKS:
            self.rotate()
        self._write(self.fd, task, gen)
        try:
            os.link(self.path, path)
        except FileExistsError:
            if not self._linked_anyway(path):
                return None
        except OSError as exc:
            # A link limit lower than MAX_LINKS: EMLINK, or ENOSPC on GlusterFS
            # (measured: about 740 links).  With a fresh token it is a real error.
            if exc.errno not in (errno.EMLINK, errno.ENOSPC) or self.links <= 1:
                raise
            self.rotate()
            return self.claim(path, task, gen)
        self.links += 1
        return Claim(path, self.ino, self.fd, task, gen, own_fd=False)

    def _linked_anyway(self, path: Union[str, Path]) -> bool:
        # NFS: a retransmitted LINK can report EEXIST although it succeeded.
        try:
            return os.stat(path).st_ino == self.ino
        except OSError:
            return False

    def rotate(self) -> None:
        self.close()
        self._open()

    def close(self) -> None:
        if self.fd >= 0:
            unlink_quietly(self.path)  # before closing: see Claim.release
            os.close(self.fd)
            self.fd = -1


def break_claim(path: Union[str, Path], record: bytes) -> None:
    """Fence the holder of claim ``path``: put a record of the break in its place.

    ``rename`` over the name is atomic: the name never goes missing, so its
    generation can never be won again by anyone acting on an old listing,
    and the holder's next look at the name (:meth:`Claim.still_mine`) finds
    another inode and never publishes.
    """
    tmp = write_temp(os.path.dirname(path), record, fsync=False)
    try:
        os.rename(tmp, path)
    except BaseException:
        unlink_quietly(tmp)
        raise


def try_claim(path: Path, task: str, gen: int, owner: bytes, use_fcntl: bool = True) -> Optional[Claim]:
    """Win claim ``path`` by creating it (O_EXCL) with ``owner`` facts in it.

    For one-off claims (``fsmw requeue``, tests); workers claim through a
    :class:`Token`.

    Returns:
        The :class:`Claim`, or ``None`` if another process has this generation.
    """
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    except FileExistsError:
        return None
    try:
        os.write(fd, owner)
        if use_fcntl and _locks_supported:
            _lock(fd, path)
        return Claim(path, os.fstat(fd).st_ino, fd, task, gen, own_fd=True)
    except BaseException:
        os.close(fd)
        unlink_quietly(path)
        raise


def _lock(fd: int, path: Union[str, Path]) -> None:
    for _ in range(200):
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except OSError as exc:
            if exc.errno not in _BUSY:
                _lock_unsupported(path, exc)
                return
        # A judge is probing our brand-new claim; its shared lock lasts microseconds.
        time.sleep(0.001)
    log.warning("%s/%d: could not lock new claim %s: a prober kept it busy", host_name(),
                os.getpid(), path)


def holder_gone(path: Path) -> Optional[bool]:
    """Ask the lock manager whether the holder of claim ``path`` has exited.

    Returns:
        True if the claim's fcntl lock is free (its holder is dead, as far as
        locks tell), False if it is held, ``None`` if that cannot be known.
    """
    if not _locks_supported:
        return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return True
    except OSError as exc:
        if exc.errno in _BUSY:
            return False
        _lock_unsupported(path, exc)
        return None
    finally:
        os.close(fd)


def read_text(path: Path, limit: int = 65536) -> Optional[bytes]:
    """Read a small record, or ``None`` if it vanished."""
    try:
        with open(path, "rb") as f:
            return f.read(limit)
    except OSError as exc:
        if exc.errno in _GONE:
            return None
        raise


class Heartbeat:
    """One thread per worker that touches the claim held at the moment.

    It wakes every ``interval`` seconds; a claim held for less than that is
    never touched, so short tasks cost no heartbeat call at all.
    ``on_fenced(claim)`` is called (from the thread) once a claim is found broken.
    """

    def __init__(self, interval: float, on_fenced: Optional[Callable[[Claim], None]] = None) -> None:
        self._interval = interval
        self._on_fenced = on_fenced
        self._claim: Optional[Claim] = None
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def hold(self, claim: Optional[Claim]) -> None:
        """Keep ``claim`` alive from now on (None: nothing to keep alive)."""
        self._claim = claim
        if claim is not None and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="fsmw-heartbeat", daemon=True)
            self._thread.start()

    def close(self) -> None:
        self._claim = None
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._stop = threading.Event()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            claim = self._claim
            if claim is None or claim.fenced:
                continue
            try:
                alive = claim.touch()
            except OSError as exc:  # a flaky mount: keep trying, the lease decides
                log.warning("%s/%d: heartbeat on %s failed: %s", host_name(), os.getpid(),
                            claim.path, exc)
                continue
            if not alive and claim.fd >= 0 and self._on_fenced:
                self._on_fenced(claim)
