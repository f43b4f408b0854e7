"""Claims: one name per task attempt, held with a heartbeat and fenced.

Protocol:
  * A claim is the name ``<task>.claim.<g>``; of all processes that try to
    create generation ``g`` exactly one succeeds, on a local disk and on
    NFSv3+/GlusterFS alike.  A worker claims by ``link``-ing its token (see
    ``token``: one inode per worker and round, holding its owner facts and
    its fcntl lock) to that name, which fails with EEXIST for all but one,
    like an O_CREAT|O_EXCL create, but allocates no inode per task.
    One-off claimers (``fsmw requeue``) create the name with O_EXCL
    (:func:`try_claim`).
  * A claim stays when its attempt ends (published, failed or broken): it is
    the record that generation ``g`` was used, so a worker acting on an old
    listing that tries ``g`` again simply loses, and no re-check of the
    task's other files is needed after a win.  Only an interrupted holder
    removes its claim, to give the task back at once.
  * Breaking a stale claim and starting a backup copy both mean winning the
    next generation after every one the judge's listing shows, so two
    breakers can never both win.  The judge then renames a record of the
    break over the stale name (:func:`fence`, called by
    ``RoundDir.break_claim``): the name never goes missing, and it now points
    at another inode.
  * The holder's token is touched (``futimens``) every ``lease_secs / 5``
    while it holds a claim: by the worker's keeper process (``_worker.keeper``,
    which a C call holding the GIL cannot starve), or by one heartbeat thread
    per worker under a simulated clock or file system.  Before every heartbeat
    and before publishing it checks that the name still points at its inode
    (one ``stat``); if not, it is *fenced*: it stops heartbeating and never
    publishes nor removes the name.
  * fcntl is used as a witness, not as the mutual exclusion (the exclusive
    create is that).  An fcntl error other than "busy" (ENOLCK on NFS without
    lockd, ENOSYS/EOPNOTSUPP on Lustre without ``flock``) is logged once per
    process and the protocol carries on without locks.  Locks are taken with
    ``lockf`` only, never ``flock``, because the two conflict on NFS and
    GlusterFS.  A process never opens a claim of its own twice (closing any
    descriptor drops fcntl locks, see fasteners' notes).
"""

from __future__ import annotations

import errno
import logging
from typing import Any, Callable, FrozenSet, Optional, Set, Tuple, TypeVar

from .atomic import parent_dir, unlink_quietly, write_temp
from .system import (GONE, at_fork, LOCK_EX_NB, LOCK_SH_NB, O_CREATE_RW, O_DIR_READ, O_READ, REAL_CLOCK,
                     REAL_FS, Clock, FileSystem, PathLike)

log = logging.getLogger("fsmw.claims")

_BUSY = frozenset((errno.EACCES, errno.EAGAIN))
_BAD_FD = frozenset((errno.EBADFD, errno.EBADF))
# fcntl locks belong to the process, not to an object: a probe of a file this
# process has locked succeeds against its own lock, and closing the probe's
# descriptor drops that lock.  So the files this process holds locked (by
# (st_dev, st_ino)) are never probed: several Workers in one process are safe.
_HELD_HERE: Set[Tuple[int, int]] = set()
at_fork(_HELD_HERE.clear)  # a child inherits no fcntl lock
LockKey = Optional[Tuple[int, int]]
T = TypeVar("T")


def _locks_unsupported(fs: FileSystem, path: PathLike, exc: OSError) -> None:
    """``lockf`` failed with more than "busy": say so once, and carry on without locks."""
    if fs.locks_ok:
        log.warning("fcntl locks do not work on %s (%s); fsmw carries on with lock files "
                    "and leases only", parent_dir(path), exc.strerror or exc)
    fs.locks_ok = False


class Claim:
    """A claim this process holds: the name ``path`` linked to the inode ``ino``.

    ``fd`` is an open descriptor of that inode (for heartbeats and the fcntl
    witness); ``own_fd`` says whether the claim closes it (a claim won by
    :func:`try_claim`) or a worker's token (``token``) does.
    """

    def __init__(self, path: PathLike, ino: int, fd: int, task: str, gen: int, own_fd: bool,
                 fs: FileSystem = REAL_FS, clock: Clock = REAL_CLOCK, lock: LockKey = None) -> None:
        self.path = str(path)
        self.ino = ino
        self.fd = fd
        self.task = task
        self.gen = gen
        self.fenced = False
        self.kind = "claim"  # or "break" / "backup": how it was won (for the journal)
        self._own_fd = own_fd
        self._lock_key = lock
        self._fs = fs
        self._lock = clock.lock()

    def __repr__(self) -> str:
        return f"Claim({self.name!r}, fenced={self.fenced})"

    @property
    def name(self) -> str:
        return self.path.rpartition("/")[2]

    def still_mine(self, fresh: bool = False) -> bool:
        """False once the name no longer points at our inode (broken); one ``stat``.

        ``fresh`` (before publishing): open and close the round directory first.
        An NFS client answers a ``stat`` from its lookup cache for up to
        ``acdirmax``, and so could show our own inode for a while after another
        node renamed a break record over the name; opening the directory makes
        the client revalidate it (close-to-open), and the ``stat`` then looks
        the name up afresh.  Workers skip it on a local disk.
        """
        if self.fenced:
            return False
        if fresh:
            revalidate_dir(parent_dir(self.path), self._fs)
        try:
            if stat_fresh(self.path, self._fs).st_ino != self.ino:
                self.fenced = True
        except FileNotFoundError:
            self.fenced = True
        return not self.fenced

    def touch(self) -> bool:
        """Heartbeat: refresh the claim's mtime; False once fenced."""
        with self._lock:
            if self.fd < 0 or not self.still_mine():
                return False
            try:
                self._fs.utime(self.fd)
            except OSError as exc:
                if exc.errno in _BAD_FD:
                    # GlusterFS marks descriptors that held locks across a lost
                    # connection as bad (EBADFD); the name still tells whether the
                    # claim is ours, and touching by name keeps it alive.
                    self._fs.utime(self.path)
                elif exc.errno in GONE:
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
            try:
                # Asked again on EIO...: a claim left behind would be broken only a
                # lease later, and counted as a failed attempt.
                return self.fd >= 0 and asked_again(self._unlink_if_mine, retry=TRANSIENT)
            finally:
                self._close()

    def _unlink_if_mine(self) -> bool:
        if not self.still_mine():
            return False
        unlink_quietly(self.path, self._fs)
        return True

    def _close(self) -> None:
        if self.fd >= 0 and self._own_fd:
            drop_lock(self._lock_key)
            self._fs.close(self.fd)  # drops the fcntl lock
        self.fd = -1


def revalidate_dir(path: PathLike, fs: FileSystem = REAL_FS) -> None:
    """Open and close directory ``path`` (an NFS client revalidates its cached view of it);
    a failure is ignored: the ``stat`` that follows is then as fresh as the cache."""
    try:
        fs.close(fs.open(path, O_DIR_READ))
    except OSError:
        pass


TRANSIENT = frozenset((errno.ESTALE, errno.EIO, errno.ENOSPC))  # worth asking again


def asked_again(call: Callable[..., T], *args: Any, retry: FrozenSet[int] = frozenset((errno.ESTALE,)),
                tries: int = 3) -> T:
    """``call(*args)``, asked again (up to ``tries`` times) while it fails with an errno in ``retry``.

    On NFS, ESTALE says a cached handle went stale; a new lookup answers for the
    name as it is now, so ESTALE never means "gone" (taken so, a holder would give
    up its own live claim).  The last error is raised if it persists.
    """
    for attempt in range(tries):
        try:
            return call(*args)
        except OSError as exc:
            if exc.errno not in retry or attempt == tries - 1:
                raise
    raise AssertionError("unreachable")


def stat_fresh(path: PathLike, fs: FileSystem = REAL_FS) -> Any:
    """``stat`` of ``path``, asked again on ESTALE (see :func:`asked_again`)."""
    return asked_again(fs.stat, path)


def fence(path: PathLike, record: bytes, fs: FileSystem = REAL_FS) -> None:
    """Fence the holder of claim ``path``: put ``record`` in its place.

    ``rename`` over the name is atomic: the name never goes missing, so its
    generation can never be won again by anyone acting on an old listing,
    and the holder's next look at the name (:meth:`Claim.still_mine`) finds
    another inode and never publishes.
    """
    tmp = write_temp(parent_dir(path), record, False, fs)
    try:
        fs.rename(tmp, path)
    except BaseException:
        unlink_quietly(tmp, fs)
        raise


def try_claim(path: PathLike, task: str, gen: int, owner: bytes, use_fcntl: bool = True,
              fs: FileSystem = REAL_FS, clock: Clock = REAL_CLOCK) -> Optional[Claim]:
    """Win claim ``path`` by creating it (O_EXCL) with ``owner`` facts in it.

    For one-off claims (``fsmw requeue``); workers claim through a token.

    Returns:
        The :class:`Claim`, or ``None`` if another process has this generation.
    """
    try:
        fd = fs.open(path, O_CREATE_RW, 0o666)
    except FileExistsError:
        return None
    try:
        fs.write(fd, owner)
        key = take_lock(fd, path, fs, clock) if use_fcntl and fs.locks_ok else None
        return Claim(path, fs.fstat(fd).st_ino, fd, task, gen, True, fs, clock, key)
    except BaseException:
        fs.close(fd)
        unlink_quietly(path, fs)
        raise


def take_lock(fd: int, path: PathLike, fs: FileSystem = REAL_FS, clock: Clock = REAL_CLOCK) -> LockKey:
    """Take the fcntl witness lock on a new claim or token; the key to :func:`drop_lock` it by."""
    for _ in range(200):
        try:
            fs.lockf(fd, LOCK_EX_NB)
            st = fs.fstat(fd)
            _HELD_HERE.add((st.st_dev, st.st_ino))
            return (st.st_dev, st.st_ino)
        except OSError as exc:
            if exc.errno not in _BUSY:
                _locks_unsupported(fs, path, exc)
                return None
        # A judge is probing our brand-new claim; its shared lock lasts microseconds.
        clock.sleep(0.001)
    log.warning("could not lock new claim %s: a prober kept it busy", path)
    return None


def drop_lock(key: LockKey) -> None:
    """Forget a lock this process is about to release (by closing its descriptor)."""
    if key is not None:
        _HELD_HERE.discard(key)


def holder_gone(path: PathLike, fs: FileSystem = REAL_FS) -> Optional[bool]:
    """Ask the lock manager whether the holder of claim ``path`` has exited.

    Returns:
        True if the claim's fcntl lock is free (its holder is dead, as far as
        locks tell), False if it is held, ``None`` if that cannot be known.
    """
    if not fs.locks_ok:
        return None
    try:
        st = fs.stat(path)
        if (st.st_dev, st.st_ino) in _HELD_HERE:
            return False  # held by this very process (another Worker object here): alive
        fd = fs.open(path, O_READ)
    except OSError:
        return None
    try:
        fs.lockf(fd, LOCK_SH_NB)
        return True
    except OSError as exc:
        if exc.errno in _BUSY:
            return False
        _locks_unsupported(fs, path, exc)
        return None
    finally:
        fs.close(fd)
