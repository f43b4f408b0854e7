"""Claim tokens: one inode per worker and shard that all of its claims in the shard link to.

Claiming a task is ``link(token, <task>.claim.<g>)``: exclusive like an
O_CREAT|O_EXCL create (EEXIST for all but one process), but no inode is
allocated per task, which on a disk where creating a file costs a fraction of
a millisecond is most of a task's cost.  The token holds the worker's owner
facts and its fcntl witness lock (see ``claims``), so ``cat`` on a claim and
``fsmw status`` tell who holds it, and a dead worker's claims are unlocked.
Since every claim of a worker is the same inode, ``cat`` on any of them shows
the task the worker is on *now* (or last was on), not the claim's own task.

Property: a worker's claims all point at the inode of a token it holds open;
the name of a claim no longer pointing there means the claim was broken
(:meth:`fsmw._core.claims.Claim.still_mine`).
"""

from __future__ import annotations

import errno
from typing import Mapping, Optional

from . import claims
from .atomic import unlink_quietly
from .claims import Claim
from .layout import TOKEN_PREFIX, private_name
from .owner import safe_host
from .records import format_record, iso_time, token_record
from .shard import Shard
from .system import O_CREATE_RW, REAL_CLOCK, Clock, PathLike, token_hex


class Token:
    """A worker's claim token in one shard directory: the inode its claims there link to.

    ``.worker.<host>.<pid>.<hex>`` holds the worker's owner facts and, where
    fcntl works, the worker's write lock for as long as it lives.  Before each
    link the current task, attempt and start time are written over the
    record (one ``pwrite``), so ``cat`` on a running claim tells who runs what
    since when.  A new token is started every ``MAX_LINKS`` claims, and
    sooner if the file system refuses another link (ext4 allows 65,000 links
    to an inode; GlusterFS answered ENOSPC after about 740).  The token's name
    is removed when the worker leaves the shard; its claims keep the inode.
    """

    MAX_LINKS = 256
    RECORD_SIZE = 1024

    def __init__(self, shard: Shard, facts: Mapping[str, object], clock: Clock = REAL_CLOCK) -> None:
        self._shard = shard
        self._facts = format_record(facts)  # rendered once
        self._fs, self._clock = shard.fs, clock
        self._second, self._started = -1, b""
        self.fd = -1
        self._open()

    def _open(self) -> None:
        fs = self._fs
        self.path = self._shard.join(private_name(TOKEN_PREFIX, safe_host(fs), fs.getpid(), token_hex(fs=fs)))
        fd = fs.open(self.path, O_CREATE_RW, 0o666)
        try:
            self._write(fd, "", 0)
            self._lock_key = claims.take_lock(fd, self.path, fs, self._clock) if fs.locks_ok else None
            self.ino = fs.fstat(fd).st_ino
        except BaseException:
            fs.close(fd)
            unlink_quietly(self.path, fs)
            raise
        self.fd, self.links = fd, 1

    def _write(self, fd: int, task: str, gen: int) -> None:
        now = int(self._clock.time())
        if now != self._second:  # the ISO time changes once a second at most
            self._second, self._started = now, iso_time(now)
        record = token_record(task, gen, self._facts, self._started if task else b"", self.RECORD_SIZE)
        self._fs.pwrite(fd, record, 0)

    def claim(self, path: PathLike, task: str, gen: int) -> Optional[Claim]:
        """Try to win claim ``path``; None if another process has this generation."""
        if self.fd < 0:  # a rotation failed (ENOSPC...): a new token now
            self._open()
        elif self.links >= self.MAX_LINKS:
            self.rotate()
        self._write(self.fd, task, gen)
        try:
            self._fs.link(self.path, path)
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
        return Claim(path, self.ino, self.fd, task, gen, False, self._fs, self._clock)

    def _linked_anyway(self, path: PathLike) -> bool:
        # NFS: a retransmitted LINK can report EEXIST although it succeeded.  ESTALE
        # is asked again (a wrong "no" would leave a claim on our token, live
        # for as long as this worker heartbeats, that nobody runs).
        try:
            st = claims.asked_again(self._fs.stat, path, retry=claims.TRANSIENT, tries=5)
        except FileNotFoundError:
            return False
        return bool(st.st_ino == self.ino)

    def rotate(self) -> None:
        self.close()
        self._open()

    def close(self) -> None:
        if self.fd >= 0:
            unlink_quietly(self.path, self._fs)  # before closing: see Claim.release
            claims.drop_lock(self._lock_key)
            self._fs.close(self.fd)
            self.fd = -1
