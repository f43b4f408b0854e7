"""Claims: one lock file per task attempt, held with a heartbeat and fenced.

Protocol:
  * A claim is the file ``<task>.claim.<g>`` created with ``O_CREAT|O_EXCL``:
    of all processes that try generation ``g`` exactly one succeeds, on a local
    disk and on NFSv3+/GlusterFS alike.  The winner writes its owner facts
    into it (``cat`` shows who works on what) and, where the file system
    supports it, holds an fcntl write lock on it for as long as it works.
  * A claim file stays when its attempt ends (published, failed or broken):
    it is the record that generation ``g`` was used, so a worker acting on an
    old listing that tries ``g`` again simply loses the O_EXCL create, and no
    re-check of the task's other files is needed after a win.  Only an
    interrupted holder removes its claim, to give the task back at once.
  * Breaking a stale claim and starting a backup copy both mean winning the
    next generation after every one the judge's listing shows; the old file is
    never renamed or re-created, so two breakers can never both win.
  * A judge breaks a claim by clearing its permission bits (``chmod 000``,
    :func:`break_claim`).  The holder touches its claim (``futimens`` on its
    own descriptor) every ``lease_secs / 5`` from one heartbeat thread per
    worker, and before every heartbeat and before publishing it looks at its
    own descriptor (one ``fstat``): a broken claim means it is *fenced*, stops
    heartbeating and never publishes nor removes the file.
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
        self.fenced = False
        self.kind = "claim"  # or "break" / "backup": how it was won (for the journal)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Claim({self.path.name!r}, fenced={self.fenced})"

    def still_mine(self) -> bool:
        """False once a judge broke the claim (see :func:`break_claim`); one ``fstat``."""
        if self.fenced:
            return False
        try:
            st = os.fstat(self.fd)
        except OSError as exc:
            if exc.errno not in _BAD_FD:
                raise
            st = self._stat_by_name()  # see touch
            if st is None:
                self.fenced = True
                return False
        if is_broken(st):
            self.fenced = True
        return not self.fenced

    def _stat_by_name(self) -> Optional[os.stat_result]:
        try:
            return os.stat(self.path)
        except OSError as exc:
            if exc.errno not in _GONE:
                raise
            return None

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
        """The attempt has ended (published, failed or discarded): keep the file, drop the fd.

        The claim file stays as the record that this generation was used, so a
        worker acting on an old listing cannot win it again.
        """
        with self._lock:
            self._close()

    def release(self) -> bool:
        """Give the task back (an interrupted attempt): remove the claim if still ours.

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


def is_broken(st: os.stat_result) -> bool:
    """True for a claim a judge has broken (no permission bits left, or unlinked)."""
    return st.st_mode & 0o777 == 0 or st.st_nlink == 0


def break_claim(path: Path) -> None:
    """Fence the holder of claim ``path``: clear its permission bits (``chmod 000``).

    The file stays, so its generation can never be won again by anyone acting
    on an old listing; its holder sees the mode on its next ``fstat`` and
    never publishes.  If the claim belongs to another user (chmod is refused),
    it is removed instead, which its holder sees as a link count of 0.
    """
    try:
        os.chmod(path, 0)
    except PermissionError:
        unlink_quietly(path)
    except OSError as exc:
        if exc.errno not in _GONE:
            raise


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
