"""A simulated process's side of the NFS client: descriptors, caches, faults, identity.

:class:`Client` is what every call of ``procfs.ProcFS`` starts with: the
scheduling point and the injected fault (:meth:`Client._call`), lookups
through the node's cache, the descriptor table, and the process's identity
(pid, host, its seeded random names, whether a pid lives on its node).

Property: a process's descriptors and fcntl locks go when it ends
(:meth:`Client.drop_all`), as the kernel closes them for a crashed process.
"""

from __future__ import annotations

import errno
from typing import Any, Dict, List, Optional

from fsmw._core.system import FileSystem

from .nfs import MOUNTINFO, Inode, Node, Server, _err


class Client(FileSystem):
    """The bookkeeping and identity half of a simulated process's file system."""

    def __init__(self, world: Any, proc: Any, node: Node) -> None:
        self.world, self.proc, self.node = world, proc, node
        self.server: Server = world.server
        self.kernel = world.kernel
        self.fds: Dict[int, List[Any]] = {}  # fd -> [inode, flags, position]
        self._next_fd = 3
        self.locks_ok = True

    # -- bookkeeping -------------------------------------------------------------
    def _call(self, op: str, path: object, kinds: str) -> None:
        """A scheduling point, then maybe a fault (before the call takes effect)."""
        self.kernel.point()
        thread = self.kernel.current
        thread.prev, thread.last = thread.last, (op, path)
        thread.recent = thread.recent[-3:] + [thread.last]
        code = self.world.faults.draw(self.proc, kinds)
        if code:
            self.kernel.note(self.proc.name, op, self.world.short(path), "FAULT " + errno.errorcode[code])
            raise _err(code, path)

    def _log(self, op: str, path: object, result: object = "") -> None:
        if self.world.tracing:
            self.kernel.note(self.proc.name, op, self.world.short(path), result)

    def _now(self) -> float:
        return self.kernel.now

    def _lookup(self, path: str) -> Inode:
        """A name through this node's lookup cache (may be stale either way)."""
        node = self.node
        hit = node.dcache.get(path)
        if hit is not None and self._now() - hit[1] < node.acdir:
            if hit[0] is None:
                raise _err(errno.ENOENT, path)
            found = self.server.inodes.get(hit[0])
            if found is not None:
                return found
        found = self.server.resolve(path)  # a fresh lookup (Linux retries ESTALE once with one)
        node.dcache[path] = (found.ino if found else None, self._now())
        if found is None:
            raise _err(errno.ENOENT, path)
        return found

    def _saw(self, path: str, inode: Optional[Inode], dir_path: str) -> None:
        """This node changed ``path`` itself: its caches know at once."""
        node = self.node
        node.dcache[path] = (inode.ino if inode else None, self._now())
        node.lcache.pop(dir_path, None)
        if inode is not None:
            node.acache.pop(inode.ino, None)

    def _revalidate_dir(self, path: str) -> None:
        """Opening a directory revalidates it (close-to-open, as Linux's NFS client does):
        cached lookups of its names and its cached listing are asked afresh."""
        node, prefix = self.node, path.rstrip("/") + "/"
        for cached in [p for p in node.dcache if p.startswith(prefix) and "/" not in p[len(prefix):]]:
            del node.dcache[cached]
        node.lcache.pop(path, None)

    def _fd(self, fd: int) -> List[Any]:
        entry = self.fds.get(fd)
        if entry is None:
            raise _err(errno.EBADF)
        return entry

    def drop_all(self) -> None:
        """The process ended: close every descriptor, drop every lock."""
        for fd in list(self.fds):
            self._close(fd)

    def _close(self, fd: int) -> None:
        inode = self.fds.pop(fd)[0]
        inode.opens -= 1
        held = self.server.locks.get(inode.ino)
        if held:
            held.pop(self.proc, None)  # closing any descriptor drops the process's lock
        self.server.unref(inode)

    # -- who is calling -------------------------------------------------------------
    def pathconf(self, path: Any, name: str) -> int:
        return 255

    def getpid(self) -> int:
        return int(self.proc.pid)

    @staticmethod
    def getuid() -> int:
        return 1000

    def hostname(self) -> str:
        return str(self.node.name)

    def random_hex(self, nbytes: int = 4) -> str:
        return "%0*x" % (2 * nbytes, self.proc.rng.getrandbits(8 * nbytes))

    @staticmethod
    def realpath(path: str) -> str:
        return str(path)

    def pid_alive(self, pid: int) -> bool:
        return self.world.pid_alive(self.node, pid)

    @staticmethod
    def mountinfo() -> str:
        return MOUNTINFO

    def syncfs(self, path: Any) -> None:
        self._call("syncfs", path, "w")
