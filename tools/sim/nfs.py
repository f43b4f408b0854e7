"""An in-memory shared file system that behaves like NFS, as seen by each simulated process.

The *server* holds the truth: inodes, directories, link counts, mtimes from
the server's clock, and fcntl locks (per process, dropped when the process
closes any descriptor of the file, exits or crashes).  Each *node* is an NFS
client with its own caches, shared by the processes on it:

* a lookup cache (``acdir``): a name another node created may stay invisible
  to this node's ``stat``/``open``, and a removed or replaced name may still
  resolve to its old inode, for up to ``acdir`` seconds;
* a listing cache (``acdir``): ``listdir`` may return an old listing;
* an attribute cache (``actimeo``): ``stat`` may return an old mtime (and link count).

What a node does itself updates its own caches at once, as Linux does.
Creates (``O_EXCL``), ``link``, ``rename``, ``unlink`` and ``mkdir`` are decided
by the server, so exclusive creation holds across nodes.  Faults come from the
world (``faults``): ENOSPC, EIO or ESTALE before a call takes effect, and
EEXIST after a ``link`` that succeeded (a retransmitted LINK).

Property: the server alone decides every create, link, rename, unlink and
mkdir, so what is exclusive on NFS (``O_EXCL``, ``link``) is exclusive here;
only lookups, listings and attributes may be stale (``procfs`` reads them).
"""

from __future__ import annotations

import errno
import os
from typing import Any, Dict, List, Optional, Tuple

EPOCH = 1_764_000_000.0  # the server's clock at virtual time 0
MOUNTINFO = "40 1 0:50 / /sim rw,relatime - nfs server:/export rw,vers=3,hard,proto=tcp\n"


def _err(code: int, path: object = None) -> OSError:
    return OSError(code, os.strerror(code), *(() if path is None else (str(path),)))


class SimStat:
    __slots__ = ("st_ino", "st_dev", "st_mode", "st_nlink", "st_size", "st_mtime_ns", "st_ctime_ns",
                 "st_uid")

    def __init__(self, node: "Inode") -> None:
        self.st_ino, self.st_dev, self.st_uid = node.ino, 7, 1000
        self.st_mode = 0o040755 if node.entries is not None else 0o100644
        self.st_nlink, self.st_size = node.nlink, len(node.data)
        self.st_mtime_ns, self.st_ctime_ns = node.mtime_ns, node.ctime_ns

    @property
    def st_mtime(self) -> float:
        return self.st_mtime_ns / 1e9


class Inode:
    __slots__ = ("ino", "entries", "data", "nlink", "mtime_ns", "ctime_ns", "opens", "creator", "changes")

    def __init__(self, ino: int, is_dir: bool, now_ns: int, creator: Any) -> None:
        self.ino = ino
        self.entries: Optional[Dict[str, int]] = {} if is_dir else None
        self.data = bytearray()
        self.nlink, self.opens = 1, 0
        self.mtime_ns = self.ctime_ns = now_ns
        self.creator = creator
        self.changes: List[float] = []  # virtual times of every change of mtime or ctime


class Server:
    """The file server: the one truth every node's calls end in."""

    def __init__(self, kernel: Any) -> None:
        self.kernel = kernel
        self.inodes: Dict[int, Inode] = {}
        self.locks: Dict[int, Dict[Any, str]] = {}  # ino -> {proc: "ex" | "sh"}
        self._next = 1
        self.root = self.new(True, None)

    def now_ns(self) -> int:
        return int((EPOCH + self.kernel.now) * 1e9)

    def new(self, is_dir: bool, creator: Any) -> Inode:
        node = Inode(self._next, is_dir, self.now_ns(), creator)
        self.inodes[node.ino] = node
        self._next += 1
        return node

    def changed(self, node: Inode, data: bool) -> None:
        now = self.now_ns()
        node.ctime_ns = now
        if data:
            node.mtime_ns = now
        node.changes.append(self.kernel.now)

    def resolve(self, path: str) -> Optional[Inode]:
        node = self.root
        for part in path.split("/"):
            if not part:
                continue
            if node.entries is None:
                return None
            ino = node.entries.get(part)
            if ino is None:
                return None
            node = self.inodes[ino]
        return node

    def parent(self, path: str) -> Tuple[Inode, str, str]:
        head, _, name = path.rstrip("/").rpartition("/")
        node = self.resolve(head or "/")
        if node is None:
            raise _err(errno.ENOENT, path)
        if node.entries is None:
            raise _err(errno.ENOTDIR, path)
        return node, head or "/", name

    def unref(self, node: Inode) -> None:
        if node.nlink <= 0 and node.opens <= 0:
            self.inodes.pop(node.ino, None)
            self.locks.pop(node.ino, None)


class Node:
    """An NFS client host: its name, its caches, its clock's offset, whether fcntl locks work."""

    def __init__(self, name: str, actimeo: float, acdir: float, wall_offset: float, locks: bool) -> None:
        self.name, self.actimeo, self.acdir = name, actimeo, acdir
        self.wall_offset, self.locks = wall_offset, locks
        self.dcache: Dict[str, Tuple[Optional[int], float]] = {}
        self.acache: Dict[int, Tuple[SimStat, float]] = {}
        self.lcache: Dict[str, Tuple[List[str], float]] = {}
