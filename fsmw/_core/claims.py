"""Claims: one lock file per task attempt, held with a heartbeat and fenced.

Protocol:
  * A claim is the name ``<task>.claim.<g>``; of all processes that try to
    create generation ``g`` exactly one succeeds, on a local disk and on
    NFSv3+/GlusterFS alike.  A worker claims by ``link``-ing its token (see
    ``_token``: one inode per worker and round, holding its owner facts
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
import threading
import time
from pathlib import Path
from typing import Optional, Union

from .atomic import unlink_quietly, write_temp
from .owner import host_name

log = logging.getLogger("fsmw.claims")

_BUSY = frozenset((errno.EACCES, errno.EAGAIN))
_GONE = frozenset((errno.ENOENT, errno.ESTALE))
_BAD_FD = frozenset((errno.EBADFD, errno.EBADF))
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
    :func:`try_claim`) or a worker's token (``_token``) does.
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
    token (``_token``).

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
            take_lock(fd, path)
        return Claim(path, os.fstat(fd).st_ino, fd, task, gen, own_fd=True)
    except BaseException:
        os.close(fd)
        unlink_quietly(path)
        raise


def take_lock(fd: int, path: Union[str, Path]) -> None:
    """Take the fcntl witness lock on a new claim or token (see the module docstring)."""
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
