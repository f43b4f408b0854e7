"""Claims: one lock file per task attempt, held with a heartbeat and fenced.

Protocol:
  * A claim is the file ``<task>.claim.<g>`` created with ``O_CREAT|O_EXCL``:
    of all processes that try generation ``g`` exactly one succeeds, on a local
    disk and on NFSv3+/GlusterFS alike.  The winner writes its owner facts
    into it (``cat`` shows who works on what) and, where the file system
    supports it, holds an fcntl write lock on it for as long as it works.
  * Breaking a stale claim ``g`` and starting a backup copy both mean winning
    generation ``max + 1``; the old file is never renamed or re-created, so
    two breakers can never both win, and a breaker can never remove a claim
    younger than the one it judged.
  * The holder touches its claim (``futimens`` on its own descriptor) every
    ``lease_secs / 5`` from a heartbeat thread.  Before every heartbeat and
    before it removes its claim it checks that the name still points at its
    inode; if not, the claim was broken and the holder is *fenced*: it stops
    heartbeating and never removes a file it does not own.
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
import threading
import time
from pathlib import Path
from typing import Callable, Optional

from ._atomic import unlink_quietly
from ._owner import host_name

log = logging.getLogger("fsmw.claims")

_BUSY = frozenset((errno.EACCES, errno.EAGAIN))
_GONE = frozenset((errno.ENOENT, errno.ESTALE))
_BAD_FD = frozenset((errno.EBADFD, errno.EBADF))
_locks_broken_reported = False
_locks_supported = True


def locks_supported() -> bool:
    """False once an fcntl call failed with anything but 'busy' in this process."""
    return _locks_supported


def _lock_unsupported(path: Path, exc: OSError) -> None:
    global _locks_broken_reported, _locks_supported
    _locks_supported = False
    if not _locks_broken_reported:
        _locks_broken_reported = True
        log.warning("%s/%d: fcntl locks do not work on %s (%s); fsmw carries on with lock "
                    "files and leases only", host_name(), os.getpid(), path.parent,
                    os.strerror(exc.errno or 0))


class Claim:
    """A claim this process holds (see :func:`try_claim`)."""

    def __init__(self, path: Path, fd: int, task: str, gen: int) -> None:
        self.path = path
        self.fd = fd
        self.task = task
        self.gen = gen
        self.ino = os.fstat(fd).st_ino
        self.fenced = False
        self.kind = "claim"  # or "break" / "backup": how it was won (for the journal)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Claim({self.path.name!r}, fenced={self.fenced})"

    def still_mine(self) -> bool:
        """True while the claim's name still points at this claim's file."""
        if self.fenced:
            return False
        try:
            if self._unlinked() or os.stat(self.path).st_ino != self.ino:
                self.fenced = True
        except OSError as exc:
            if exc.errno not in _GONE:
                raise
            self.fenced = True
        return not self.fenced

    def _unlinked(self) -> bool:
        try:
            return os.fstat(self.fd).st_nlink == 0
        except OSError as exc:
            if exc.errno in _BAD_FD:
                return False  # judge by the name alone (see touch)
            raise

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

    def release(self) -> bool:
        """Remove the claim if it is still ours and close it; True if removed.

        The file is unlinked *before* it is closed: closing first would drop the
        fcntl lock while the file still exists, and a judge trusting locks
        (``take_lockfile_existence_as_lock=False``) could take that for a dead
        holder.  On NFS this leaves a ``.nfs*`` file for the instant between
        the two calls; scans ignore it (it starts with a dot).
        """
        with self._lock:
            removed = False
            if self.fd >= 0 and self.still_mine():
                unlink_quietly(self.path)
                removed = True
            self._close()
            return removed

    def _close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)  # drops the fcntl lock
            self.fd = -1


def try_claim(path: Path, task: str, gen: int, owner: bytes, use_fcntl: bool = True) -> Optional[Claim]:
    """Try to win claim ``path`` (generation ``gen`` of ``task``).

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
        return Claim(path, fd, task, gen)
    except BaseException:
        os.close(fd)
        unlink_quietly(path)
        raise


def _lock(fd: int, path: Path) -> None:
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
    """Touch a claim every ``interval`` seconds until stopped or fenced."""

    def __init__(self, claim: Claim, interval: float,
                 on_fenced: Optional[Callable[[Claim], None]] = None) -> None:
        self._claim = claim
        self._interval = interval
        self._on_fenced = on_fenced
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"fsmw-heartbeat-{claim.task}",
                                        daemon=True)

    def __enter__(self) -> "Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                alive = self._claim.touch()
            except OSError as exc:  # a flaky mount: keep trying, the lease decides
                log.warning("%s/%d: heartbeat on %s failed: %s", host_name(), os.getpid(),
                            self._claim.path, exc)
                continue
            if not alive:
                if self._on_fenced:
                    self._on_fenced(self._claim)
                return
