"""One simulated process's file system: the os-like calls fsmw makes, on the simulated NFS.

Each call is a scheduling point (``kernel``), may fail with an injected fault
before it takes effect (``faults``), goes through the process's node's caches
where a real NFS client would (lookups, listings, attributes; see ``nfs``),
and reports every change of a name or of a file's content to the checker.

Property: a simulated process reaches the shared file system only through
its :class:`ProcFS`, and the checker sees every change it makes.
"""

from __future__ import annotations

import errno
import os
from typing import Any, List, Tuple

from .client import Client
from .nfs import Inode, SimStat, _err

_ACCMODE = os.O_RDONLY | os.O_WRONLY | os.O_RDWR


class ProcFS(Client):
    """One simulated process's file system: os-like calls on the shared server through its node."""

    # -- the calls fsmw makes ------------------------------------------------------
    def open(self, path: Any, flags: int, mode: int = 0o777) -> int:
        path = str(path)
        creating = bool(flags & os.O_CREAT)
        self._call("open", path, "cw" if creating else "r")
        if creating:
            parent, dir_path, name = self.server.parent(path)
            ino = parent.entries.get(name)  # type: ignore[union-attr]
            if ino is not None and flags & os.O_EXCL:
                raise _err(errno.EEXIST, path)
            if ino is None:
                inode = self.server.new(False, self.proc)
                parent.entries[name] = inode.ino  # type: ignore[index]
                self.server.changed(parent, True)
                self._saw(path, inode, dir_path)
                self.world.check.named(self.proc, dir_path, name, inode, None)
            else:
                inode = self.server.inodes[ino]
        else:
            inode = self._lookup(path)
        if inode.entries is not None and flags & _ACCMODE != os.O_RDONLY:
            raise _err(errno.EISDIR, path)
        if inode.entries is not None:
            self._revalidate_dir(path)
        if flags & os.O_TRUNC and inode.data:
            self._modify(inode, 0, b"", truncate=True)
        fd, self._next_fd = self._next_fd, self._next_fd + 1
        self.fds[fd] = [inode, flags, 0]
        inode.opens += 1
        self._log("open", path, fd)
        return fd

    def _modify(self, inode: Inode, offset: int, data: bytes, truncate: bool = False) -> None:
        if truncate:
            del inode.data[offset:]
        if len(inode.data) < offset:
            inode.data.extend(b"\0" * (offset - len(inode.data)))
        inode.data[offset:offset + len(data)] = data
        self.server.changed(inode, True)
        self.node.acache.pop(inode.ino, None)
        self.world.check.wrote(self.proc, inode)

    def write(self, fd: int, data: Any) -> int:
        self._call("write", fd, "w")
        entry = self._fd(fd)
        if entry[1] & _ACCMODE == os.O_RDONLY:
            raise _err(errno.EBADF)
        data = bytes(data)
        if entry[1] & os.O_APPEND:
            entry[2] = len(entry[0].data)
        self._modify(entry[0], entry[2], data)
        entry[2] += len(data)
        self._log("write", fd, len(data))
        return len(data)

    def pwrite(self, fd: int, data: Any, offset: int) -> int:
        self._call("pwrite", fd, "w")
        entry = self._fd(fd)
        self._modify(entry[0], offset, bytes(data))
        self._log("pwrite", fd, len(data))
        return len(data)

    def read(self, fd: int, n: int) -> bytes:
        self._call("read", fd, "r")
        entry = self._fd(fd)
        data = bytes(entry[0].data[entry[2]:entry[2] + n])
        entry[2] += len(data)
        self._log("read", fd, len(data))
        return data

    def fsync(self, fd: int) -> None:
        self._call("fsync", fd, "w")
        self._fd(fd)
        self._log("fsync", fd)

    def close(self, fd: int) -> None:
        self.kernel.point()
        self._fd(fd)
        self._close(fd)
        if self.world.faults.draw(self.proc, "r"):  # NFS reports a failed write-back at close: EIO
            self.kernel.note(self.proc.name, "close", fd, "FAULT EIO (the descriptor is closed)")
            raise _err(errno.EIO)
        self._log("close", fd)

    def fstat(self, fd: int) -> SimStat:
        self._call("fstat", fd, "r")
        entry = self._fd(fd)
        self._log("fstat", fd, entry[0].ino)
        return SimStat(entry[0])

    def stat(self, path: Any) -> SimStat:
        path = str(path)
        self._call("stat", path, "rs")
        inode = self._lookup(path)
        truth = self.server.resolve(path)
        thread = self.kernel.current
        thread.last = thread.recent[-1] = ("stat", path, inode, truth)  # what it answered, what was true
        node, now = self.node, self._now()
        hit = node.acache.get(inode.ino)
        if hit is not None and now - hit[1] < node.actimeo:
            self._log("stat", path, f"{hit[0].st_ino} (cached)")
            return hit[0]
        st = SimStat(inode)
        node.acache[inode.ino] = (st, now)
        self._log("stat", path, st.st_ino)
        return st

    lstat = stat

    def link(self, src: Any, dst: Any) -> None:
        src, dst = str(src), str(dst)
        self._call("link", dst, "cw")
        inode = self.server.resolve(src)
        if inode is None:
            raise _err(errno.ENOENT, src)
        parent, dir_path, name = self.server.parent(dst)
        if name in parent.entries:  # type: ignore[operator]
            raise _err(errno.EEXIST, dst)
        parent.entries[name] = inode.ino  # type: ignore[index]
        inode.nlink += 1
        self.server.changed(inode, False)
        self.server.changed(parent, True)
        self._saw(dst, inode, dir_path)
        self.node.acache.pop(inode.ino, None)
        self._log("link", dst, inode.ino)
        self.world.check.named(self.proc, dir_path, name, inode, None)
        if self.world.faults.eexist_after_link(self.proc):
            self.kernel.note(self.proc.name, "link", self.world.short(dst), "FAULT EEXIST after success")
            raise _err(errno.EEXIST, dst)

    def _existing(self, op: str, path: str) -> Tuple[Any, str, str, Any]:
        """The call ``op`` on ``path``, which must name something: (parent, its path, name, inode)."""
        self._call(op, path, "w")
        parent, dir_path, name = self.server.parent(path)
        ino = parent.entries.get(name)  # type: ignore[union-attr]
        if ino is None:
            raise _err(errno.ENOENT, path)
        return parent, dir_path, name, self.server.inodes[ino]

    def unlink(self, path: Any) -> None:
        path = str(path)
        parent, dir_path, name, inode = self._existing("unlink", path)
        if inode.entries is not None:
            raise _err(errno.EISDIR, path)
        del parent.entries[name]  # type: ignore[union-attr]
        inode.nlink -= 1
        self.server.changed(inode, False)
        self.server.changed(parent, True)
        self._saw(path, None, dir_path)
        self._log("unlink", path)
        self.world.check.unnamed(self.proc, dir_path, name, inode)
        self.server.unref(inode)

    def rename(self, src: Any, dst: Any) -> None:
        src, dst = str(src), str(dst)
        self._call("rename", dst, "w")
        sparent, sdir, sname = self.server.parent(src)
        ino = sparent.entries.get(sname)  # type: ignore[union-attr]
        if ino is None:
            raise _err(errno.ENOENT, src)
        dparent, ddir, dname = self.server.parent(dst)
        old = dparent.entries.get(dname)  # type: ignore[union-attr]
        inode = self.server.inodes[ino]
        if old == ino:
            return
        del sparent.entries[sname]  # type: ignore[union-attr]
        dparent.entries[dname] = ino  # type: ignore[index]
        self.server.changed(sparent, True)
        self.server.changed(dparent, True)
        self._saw(src, None, sdir)
        self._saw(dst, inode, ddir)
        self._log("rename", dst, f"from {self.world.short(src)}")
        replaced = self.server.inodes[old] if old is not None else None
        self.world.check.named(self.proc, ddir, dname, inode, replaced)
        if replaced is not None:
            replaced.nlink -= 1
            self.server.changed(replaced, False)
            self.server.unref(replaced)

    def listdir(self, path: Any) -> List[str]:
        path = str(path)
        self._call("listdir", path, "rs")
        node, now = self.node, self._now()
        hit = node.lcache.get(path)
        if hit is not None and now - hit[1] < node.acdir:
            self._log("listdir", path, f"{len(hit[0])} (cached)")
            return list(hit[0])
        inode = self.server.resolve(path)
        if inode is None:
            raise _err(errno.ENOENT, path)
        if inode.entries is None:
            raise _err(errno.ENOTDIR, path)
        names = list(inode.entries)
        node.lcache[path] = (names, now)
        self._log("listdir", path, len(names))
        return list(names)

    def mkdir(self, path: Any, mode: int = 0o777) -> None:
        path = str(path)
        self._call("mkdir", path, "cw")
        parent, dir_path, name = self.server.parent(path)
        if name in parent.entries:  # type: ignore[operator]
            raise _err(errno.EEXIST, path)
        inode = self.server.new(True, self.proc)
        parent.entries[name] = inode.ino  # type: ignore[index]
        self.server.changed(parent, True)
        self._saw(path, inode, dir_path)
        self._log("mkdir", path)

    def rmdir(self, path: Any) -> None:
        path = str(path)
        parent, dir_path, name, inode = self._existing("rmdir", path)
        if inode.entries is None:
            raise _err(errno.ENOTDIR, path)
        if inode.entries:
            raise _err(errno.ENOTEMPTY, path)
        del parent.entries[name]  # type: ignore[union-attr]
        self.server.changed(parent, True)
        self._saw(path, None, dir_path)
        self._log("rmdir", path)

    def utime(self, target: Any, times: Any = None, **kwargs: Any) -> None:
        if isinstance(target, int):
            self._call("utime", target, "w")
            inode = self._fd(target)[0]
        else:
            self._call("utime", target, "w")
            inode = self._lookup(str(target))
        self.server.changed(inode, True)  # NULL times: the server's now
        self.node.acache.pop(inode.ino, None)
        self._log("utime", target, inode.ino)

    def access(self, path: Any, mode: int) -> bool:
        self._call("access", path, "r")
        try:
            self._lookup(str(path))
        except OSError:
            return False
        return True

    def lockf(self, fd: int, cmd: int) -> None:
        import fcntl  # the constants only
        self._call("lockf", fd, "")
        entry = self._fd(fd)
        if not self.node.locks:
            raise _err(errno.ENOLCK)
        held = self.server.locks.setdefault(entry[0].ino, {})
        others = [mode for proc, mode in held.items() if proc is not self.proc]
        want = "ex" if cmd & fcntl.LOCK_EX else "sh"
        if "ex" in others or (want == "ex" and others):
            raise _err(errno.EAGAIN)
        held[self.proc] = want
        self._log("lockf", fd, want)
