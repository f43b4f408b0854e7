"""Two-stage file creation: write under a unique temp name, then publish.

Protocol:
  1. create ``.tmp.<host>.<pid>.<random><n>`` in the *same directory* as the
     final name with ``O_CREAT|O_EXCL`` (so the temp name itself can never be
     shared with another writer, also after crashes and pid reuse on another
     host), write, flush and ``fsync`` where wanted (see ``fsinfo``);
  2. publish it either by ``rename`` (the master's inputs and the markers
     SEALED, CLOSED and STOP, whose names have a single writer) or by ``link``
     then ``unlink`` of the temp (outputs and records, where a second writer
     must *not* replace the first: ``link`` fails with EEXIST instead of
     clobbering, on NFS too).

Property: a reader never sees a final name with partial content, and a
no-clobber publish never replaces an existing final file.

NFS note: a retransmitted LINK can report EEXIST although it succeeded; as
open(2) advises, the temp's link count (2) tells the two apart.
Files are created with mode 0666 filtered by the umask, like ``open()``.
Every call goes through the ``fs`` object (see ``system``).
"""

from __future__ import annotations

import itertools
import weakref
from typing import Optional

from .layout import TEMP_PREFIX, private_name, safe_host
from .system import (GONE, NOREPLACE_MISSING, O_CREATE_NEW, O_READ, REAL_FS, FileSystem, PathLike, at_fork,
                     token_hex)


class _Unique:
    """A writer's temp-name stem: host, pid and a random token, as ``fs`` tells them."""

    def __init__(self, fs: FileSystem) -> None:
        self._fs = fs
        self.reset()

    def reset(self) -> None:
        fs = self._fs
        self.stem = private_name(TEMP_PREFIX, safe_host(fs.hostname()), fs.getpid(), token_hex(fs=fs))
        self.counter = itertools.count()


_UNIQUE = _Unique(REAL_FS)  # this process's, on the real file system (new after fork)
at_fork(_UNIQUE.reset)
# Other file systems (a simulation's: one per simulated process) get their own stems.
_OTHERS: "weakref.WeakKeyDictionary[FileSystem, _Unique]" = weakref.WeakKeyDictionary()


def temp_path(directory: PathLike, fs: Optional[FileSystem] = None) -> str:
    """A temp path in ``directory`` unique to this host, process and call.

    No system call on the real file system: the random token is drawn once
    per process (so a reused pid, here or on another host, cannot repeat a
    name) and a counter follows.  Another ``fs`` (a simulated process) names
    its own host, pid and token.
    """
    if fs is None or fs is REAL_FS:
        unique = _UNIQUE
    else:
        unique = _OTHERS.get(fs) or _OTHERS.setdefault(fs, _Unique(fs))
    return f"{directory}/{unique.stem}{next(unique.counter):x}"


def write_temp(directory: PathLike, data: bytes, fsync: bool = True, fs: FileSystem = REAL_FS) -> str:
    """Write ``data`` to a new temp file in ``directory`` and return its path."""
    tmp = temp_path(directory, fs)
    fd = fs.open(tmp, O_CREATE_NEW, 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[fs.write(fd, view):]
        if fsync:
            fs.fsync(fd)
    except BaseException:
        fs.close(fd)
        unlink_quietly(tmp, fs)
        raise
    fs.close(fd)
    return tmp


def fsync_path(path: PathLike, fs: FileSystem = REAL_FS) -> None:
    """Flush a file someone else wrote (e.g. the user's output) to stable storage."""
    fd = fs.open(path, O_READ)
    try:
        fs.fsync(fd)
    finally:
        fs.close(fd)


def write_replace(final: PathLike, data: bytes, fsync: bool = True, fs: FileSystem = REAL_FS) -> None:
    """Atomically create or replace ``final`` with ``data`` (temp, then rename)."""
    tmp = write_temp(parent_dir(final), data, fsync, fs)
    try:
        fs.rename(tmp, final)
    except BaseException:
        unlink_quietly(tmp, fs)
        raise


def write_new(final: PathLike, data: bytes, fsync: bool = True, fs: FileSystem = REAL_FS) -> bool:
    """Atomically create ``final`` unless it exists; True if this call did."""
    return publish(write_temp(parent_dir(final), data, fsync, fs), final, fs)


def publish(tmp: PathLike, final: PathLike, fs: FileSystem = REAL_FS, local: bool = False) -> bool:
    """Give the complete temp file ``tmp`` the name ``final`` without clobbering.

    The temp is removed in every case.  Returns True if ``final`` is now this
    file, False if another file already had the name.  On a ``local`` file
    system this is one ``rename`` with ``RENAME_NOREPLACE`` where the kernel
    has it (atomic there by the kernel's word); on a shared one, and
    wherever that is missing, ``link`` then ``unlink``.
    """
    if local and getattr(fs, "noreplace_ok", False):
        try:
            fs.rename_noreplace(tmp, final)
            return True
        except FileExistsError:
            unlink_quietly(tmp, fs)
            return False
        except OSError as exc:
            if exc.errno not in NOREPLACE_MISSING:
                raise
            fs.noreplace_ok = False  # this kernel or file system lacks it: link from now on
    try:
        fs.link(tmp, final)
        won = True
    except FileExistsError:
        won = _link_succeeded_anyway(tmp, fs)
    finally:
        unlink_quietly(tmp, fs)
    return won


def _link_succeeded_anyway(tmp: PathLike, fs: FileSystem) -> bool:
    try:
        return fs.stat(tmp).st_nlink == 2
    except OSError:
        return False


def unlink_quietly(path: PathLike, fs: FileSystem = REAL_FS) -> None:
    """Remove ``path``; a name already gone (ENOENT, or ESTALE on NFS) is no error."""
    try:
        fs.unlink(path)
    except OSError as exc:
        if exc.errno not in GONE:
            raise


def read_small(path: PathLike, limit: int = 65536, fs: FileSystem = REAL_FS,
               missing_ok: bool = True) -> Optional[bytes]:
    """Read a small file (a record), or ``None`` if it vanished (or any error, unless asked).

    Args:
        missing_ok: True: only a vanished file gives None, other errors raise;
            False: any OSError gives None (a best-effort read).
    """
    try:
        fd = fs.open(path, O_READ)
    except OSError as exc:
        if exc.errno in GONE or not missing_ok:
            return None
        raise
    try:
        chunks, left = [], limit
        while left > 0:
            chunk = fs.read(fd, min(left, 65536))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    except OSError:
        if missing_ok:
            raise
        return None
    finally:
        fs.close(fd)


def parent_dir(path: PathLike) -> str:
    """The directory part of ``path`` (a string operation: no system call)."""
    head, sep, _ = str(path).rpartition("/")
    return (head or "/") if sep else "."
