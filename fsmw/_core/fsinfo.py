"""Which file system a store is on, and whether per-file fsync protects anything there.

``Options.fsync=None`` (the default) means: fsync each input and output before
publishing it when the store is on a file system that other machines share
(NFS, Lustre, GPFS, GlusterFS, CephFS, BeeGFS, SMB, any FUSE or unknown
type), and skip that on a local one (ext4, XFS, btrfs, tmpfs...).

Why skipping is safe on a local file system: every process that can see the
store runs on this machine and shares its page cache, so a published file is
complete for every reader the moment ``link``/``rename`` returns.  Only a
crash of the whole machine can lose unwritten data, and that also kills the
master, whose successor starts a new round and never reads the old round's
outputs.  The master instead flushes the store's file system once per round
(``syncfs``) before it hands the outputs to ``process_output_files``, so what
it returns is on stable storage.  On a shared file system a worker's node can
crash on its own after publishing, with the data still in its cache (Lustre
and GPFS write back after ``close``), so each file is fsynced first.

Property: :func:`is_local` is True only for types known to be local; anything
unrecognised counts as shared, so fsync stays on where in doubt.
"""

from __future__ import annotations

import re
from typing import Dict, Optional

from .atomic import temp_path, unlink_quietly
from .system import O_CREATE_NEW, REAL_FS, FileSystem, PathLike

LOCAL_TYPES = frozenset("""
ext2 ext3 ext4 xfs btrfs tmpfs ramfs f2fs zfs jfs reiserfs bcachefs overlay vfat exfat
""".split())


def mount_of(path: PathLike, mountinfo: Optional[str] = None, fs: FileSystem = REAL_FS) -> Dict[str, str]:
    """The mount holding ``path``: its point, file system type and options.

    Read from the mount table (``fs.mountinfo()``, or the text ``mountinfo``);
    the options are the mount's and the file system's together (NFS's
    ``nolock`` is among the latter).  Unknown: point "/", type "?".
    """
    target = fs.realpath(str(path))
    found = dict(point="/", fstype="?", options="")
    if mountinfo is None:
        mountinfo = fs.mountinfo()
    best = -1
    for line in mountinfo.splitlines():
        left, sep, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if not sep or len(fields) < 6 or not tail:
            continue
        point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4])  # "\040": space
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) > best:
            best = len(point)
            found = dict(point=point, fstype=tail[0], options=",".join([fields[5]] + tail[2:3]))
    return found


def fs_type(path: PathLike, mountinfo: Optional[str] = None, fs: FileSystem = REAL_FS) -> Optional[str]:
    """The type of the file system ``path`` is on, or None if unknown."""
    kind = mount_of(path, mountinfo, fs)["fstype"]
    return None if kind == "?" else kind


def is_local(path: PathLike, fs: FileSystem = REAL_FS) -> bool:
    """True if ``path`` is on a file system known to be local to this machine."""
    return fs_type(path, fs=fs) in LOCAL_TYPES


def fsync_wanted(option: Optional[bool], path: PathLike, fs: FileSystem = REAL_FS) -> bool:
    """Resolve ``Options.fsync`` (None: automatic, see the module docstring)."""
    return (not is_local(path, fs)) if option is None else option


def sync_file_system(path: PathLike, fs: FileSystem = REAL_FS) -> None:
    """Flush the file system holding ``path`` to stable storage (``syncfs``, else ``sync``)."""
    fs.syncfs(path)


def fs_now(directory: PathLike, fs: FileSystem = REAL_FS) -> Optional[float]:
    """Now, in the file system's clock: the mtime of a new file in ``directory``.

    The one clock probe of fsmw (``fsmw status`` and ``clean`` age files by
    it, ``fsmw doctor`` places lock windows by it): a file's mtime is set by
    the file system (the NFS server, or a GlusterFS client daemon), not by
    this host's clock.  None if ``directory`` is not writable here.
    """
    probe = temp_path(directory, fs)
    try:
        fd = fs.open(probe, O_CREATE_NEW, 0o666)
    except OSError:
        return None
    try:
        return fs.fstat(fd).st_mtime_ns / 1e9
    finally:
        fs.close(fd)
        unlink_quietly(probe, fs)
