"""Claim tokens: one inode per worker and round that all of its claims link to.

Claiming a task is ``link(token, <task>.claim.<g>)``: exclusive like an
O_CREAT|O_EXCL create (EEXIST for all but one process), but no inode is
allocated per task, which on a disk where creating a file costs a fraction of
a millisecond is most of a task's cost.  The token holds the worker's owner
facts and its fcntl witness lock (see ``_claims``), so ``cat`` on a claim and
``fsmw status`` tell who holds it, and a dead worker's claims are unlocked.

Property: a worker's claims all point at the inode of a token it holds open;
the name of a claim no longer pointing there means the claim was broken
(:meth:`fsmw._claims.Claim.still_mine`).
"""

from __future__ import annotations

import errno
import os
import secrets
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Mapping, Optional, Union

from . import claims as _claims
from .atomic import unlink_quietly
from .claims import Claim
from .owner import format_record, safe_host

TOKEN_PREFIX = ".worker."


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
            if _claims.locks_supported():
                _claims.take_lock(fd, self.path)
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
