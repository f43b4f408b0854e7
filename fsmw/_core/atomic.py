"""Two-stage file creation: write under a unique temp name, then publish.

Protocol:
  1. create ``.tmp.<host>.<pid>.<random><n>`` in the *same directory* as the
     final name with ``O_CREAT|O_EXCL`` (so the temp name itself can never be
     shared with another writer, also after crashes and pid reuse on another
     host), write, flush and ``fsync``;
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
"""

from __future__ import annotations

import errno
import itertools
import os
import secrets
from pathlib import Path
from typing import Union

from .layout import TEMP_PREFIX
from .owner import safe_host

PathLike = Union[str, "os.PathLike[str]"]
_HOST = safe_host()


class _Unique:
    """This process's temp-name stem: host, pid and a random token (new after fork)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.stem = f"{TEMP_PREFIX}{_HOST}.{os.getpid()}.{secrets.token_hex(4)}"
        self.counter = itertools.count()


_UNIQUE = _Unique()
os.register_at_fork(after_in_child=_UNIQUE.reset)


def temp_path(directory: PathLike) -> Path:
    """A temp path in ``directory`` unique to this host, process and call.

    No system call: the random token is drawn once per process (so a reused
    pid, here or on another host, cannot repeat a name) and a counter follows.
    """
    return Path(f"{os.fspath(directory)}/{_UNIQUE.stem}{next(_UNIQUE.counter):x}")


def is_temp(name: str) -> bool:
    """True for names of fsmw temp files (the one helper every scan uses)."""
    return name.startswith(TEMP_PREFIX)


def write_temp(directory: PathLike, data: bytes, fsync: bool = True) -> str:
    """Write ``data`` to a new temp file in ``directory`` and return its path."""
    tmp = f"{os.fspath(directory)}/{_UNIQUE.stem}{next(_UNIQUE.counter):x}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        if fsync:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        _unlink_quietly(tmp)
        raise
    os.close(fd)
    return tmp


def fsync_path(path: PathLike) -> None:
    """Flush a file someone else wrote (e.g. the user's output) to stable storage."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_replace(final: PathLike, data: bytes, fsync: bool = True) -> None:
    """Atomically create or replace ``final`` with ``data`` (temp, then rename)."""
    final = Path(final)
    tmp = write_temp(final.parent, data, fsync)
    try:
        os.rename(tmp, final)
    except BaseException:
        _unlink_quietly(tmp)
        raise


def write_new(final: PathLike, data: bytes, fsync: bool = True) -> bool:
    """Atomically create ``final`` unless it exists; True if this call did."""
    final = Path(final)
    return publish(write_temp(final.parent, data, fsync), final)


def publish(tmp: PathLike, final: PathLike) -> bool:
    """Give the complete temp file ``tmp`` the name ``final`` without clobbering.

    The temp is removed in every case.  Returns True if ``final`` is now this
    file, False if another file already had the name.
    """
    try:
        os.link(tmp, final)
        won = True
    except FileExistsError:
        won = _link_succeeded_anyway(tmp)
    finally:
        _unlink_quietly(tmp)
    return won


def _link_succeeded_anyway(tmp: PathLike) -> bool:
    try:
        return os.stat(tmp).st_nlink == 2
    except OSError:
        return False


def _unlink_quietly(path: PathLike) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:  # ESTALE on NFS: the file is gone for us either way
        if exc.errno != errno.ESTALE:
            raise


unlink_quietly = _unlink_quietly
