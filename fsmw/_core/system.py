"""The seams between the protocol and the machine: the file system, the clock, threads.

Every file-system call of the protocol goes through a :class:`FileSystem`
(an os-like object: each method is the ``os`` call of the same name, plus
``lockf``, the mount table and ``syncfs``), time through one :class:`Clock`
that owns "now", wall time and sleeping, and every thread and helper process
through :meth:`Clock.start_thread` and :meth:`Clock.run_helper`.  The defaults, :data:`REAL_FS` and
:data:`REAL_CLOCK`, are the machine's own; a simulation passes its own objects
(an in-memory shared file system, a virtual clock under a seeded scheduler)
to :class:`~fsmw.Store`, :class:`~fsmw.Master` and :class:`~fsmw.Worker`.

Property: this is the only module of ``fsmw._core`` that calls ``os``,
``fcntl``, ``time``, ``socket`` or ``threading`` to act on the world
(``tests/unit/test_seams.py`` checks the others), so replacing these two
objects replaces everything the protocol does to the machine.
"""

from __future__ import annotations

import errno
import fcntl
import functools
import os
import random
import threading
import time
from typing import Callable, List, Optional, Union

PathLike = Union[str, "os.PathLike[str]"]

# Flags of the opens the protocol makes (values of the os module: plain data).
O_CREATE_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
O_CREATE_RW = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
O_APPEND_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC
O_READ = os.O_RDONLY | os.O_CLOEXEC
O_DIR_READ = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC  # opening a directory revalidates it (NFS)
LOCK_EX_NB = fcntl.LOCK_EX | fcntl.LOCK_NB
LOCK_SH_NB = fcntl.LOCK_SH | fcntl.LOCK_NB
W_OK_X_OK = os.W_OK | os.X_OK
GONE = frozenset((errno.ENOENT, errno.ESTALE))  # the file is gone for us (ESTALE: NFS)


# ctypes, secrets, socket and subprocess are imported where they are used: the keeper
# process imports this module, and its start-up is paid by every worker (tens of ms).
def _hostname() -> str:
    import socket
    return socket.gethostname()


def _random_hex(nbytes: int) -> str:
    import secrets
    return secrets.token_hex(nbytes)


class FileSystem:
    """The real file system.  Each attribute is the ``os`` call of the same name.

    An os-like replacement implements the same names with the same
    signatures, return values and ``OSError`` errnos.  ``locks_ok`` turns
    False once ``lockf`` failed with anything but "busy" here (see ``claims``).
    """

    locks_ok = True
    noreplace_ok = True  # False once rename_noreplace said the kernel or file system lacks it

    open = staticmethod(os.open)
    close = staticmethod(os.close)
    read = staticmethod(os.read)
    write = staticmethod(os.write)
    pwrite = staticmethod(os.pwrite)
    fsync = staticmethod(os.fsync)
    fstat = staticmethod(os.fstat)
    stat = staticmethod(os.stat)
    lstat = staticmethod(os.lstat)
    link = staticmethod(os.link)
    unlink = staticmethod(os.unlink)
    rename = staticmethod(os.rename)
    listdir = staticmethod(os.listdir)
    mkdir = staticmethod(os.mkdir)
    rmdir = staticmethod(os.rmdir)
    utime = staticmethod(os.utime)
    access = staticmethod(os.access)
    pathconf = staticmethod(os.pathconf)
    getpid = staticmethod(os.getpid)
    getuid = staticmethod(os.getuid)
    lockf = staticmethod(fcntl.lockf)
    @staticmethod
    def rename_noreplace(src: PathLike, dst: PathLike) -> None:
        """``rename`` that fails (FileExistsError) rather than replace ``dst``: Linux's
        ``renameat2(RENAME_NOREPLACE)``, one atomic call where ``link`` + ``unlink`` are two.
        OSError EINVAL or ENOSYS where the kernel, libc or file system lacks it."""
        call = _libc_renameat2()
        if call is None:
            raise OSError(errno.ENOSYS, "renameat2 is not available", str(src))
        if call(AT_FDCWD, os.fsencode(src), AT_FDCWD, os.fsencode(dst), RENAME_NOREPLACE) != 0:
            code = _last_errno()
            raise OSError(code, os.strerror(code), str(src), None, str(dst))

    hostname = staticmethod(_hostname)
    random_hex = staticmethod(_random_hex)  # unique names: a simulation draws them seeded

    @staticmethod
    def realpath(path: str) -> str:
        return os.path.realpath(path)

    @staticmethod
    def pid_alive(pid: int) -> bool:
        """Whether process ``pid`` exists on this host (``kill(pid, 0)``)."""
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    @staticmethod
    def mountinfo() -> str:
        """The text of /proc/self/mountinfo ("" if unreadable)."""
        try:
            with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    @staticmethod
    def syncfs(path: PathLike) -> None:
        """Flush the file system holding ``path`` (``syncfs``, else ``sync``)."""
        call = _libc_syncfs()
        if call is None:
            os.sync()
            return
        fd = os.open(path, O_READ)
        try:
            if call(fd) != 0:
                os.sync()
        finally:
            os.close(fd)


AT_FDCWD = -100
RENAME_NOREPLACE = 1
NOREPLACE_MISSING = frozenset((errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP))


@functools.lru_cache(maxsize=1)
def _libc_renameat2() -> Optional[Callable[..., int]]:
    """libc's renameat2 (glibc 2.28 and later), looked up once; None if missing."""
    import ctypes
    call = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if call is not None:
        call.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint)
        call.restype = ctypes.c_int
    return call


def _last_errno() -> int:
    import ctypes
    return ctypes.get_errno()


@functools.lru_cache(maxsize=1)
def _libc_syncfs() -> Optional[Callable[[int], int]]:
    """libc's syncfs, looked up once (find_library may run ``ldconfig``)."""
    import ctypes
    import ctypes.util
    name = ctypes.util.find_library("c")
    return getattr(ctypes.CDLL(name, use_errno=True), "syncfs", None) if name else None


class Clock:
    """Time as the protocol sees it: a monotonic "now", wall time, sleeping, threads, chance.

    Everything a run does that is not a file-system call and not the same
    every time goes through here, so a seeded scheduler can replay a run.

    Args:
        now: monotonic seconds (judging leases, pacing); default ``time.monotonic``.
        sleep: sleeps that many seconds; default ``time.sleep``.
        rng: random draws (jitter, where workers start walking the queue).
        wall: wall-clock seconds (journal times, a claim's ``started``).
    """

    def __init__(self, now: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep,
                 rng: Optional[random.Random] = None,
                 wall: Callable[[], float] = time.time) -> None:
        self.now = now
        self._sleep = sleep
        self.rng = rng or random.Random()
        self.time = wall  # wall-clock seconds since the epoch, for records people read

    def sleep(self, secs: float, wake: Optional[threading.Event] = None) -> None:
        """Sleep ``secs`` seconds, or until ``wake`` is set (real clock only)."""
        if wake is not None and self._sleep is time.sleep:
            wake.wait(secs)
        elif secs > 0:
            self._sleep(secs)

    @staticmethod
    def start_thread(target: Callable[[], None], name: str) -> threading.Thread:
        """Start a daemon thread running ``target`` (the seam for threads)."""
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        return thread

    @staticmethod
    def run_helper(argv: List[str], timeout: float = 30.0) -> Optional[str]:
        """Run a helper command (the seam for helper processes); its stdout, or None if it failed."""
        import subprocess
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout if done.returncode == 0 else None

    @staticmethod
    def event() -> threading.Event:
        return threading.Event()

    @staticmethod
    def lock() -> threading.Lock:
        return threading.Lock()


def as_clock(clock: Union[Clock, Callable[[], float], None],
             sleep: Optional[Callable[[float], None]] = None) -> Clock:
    """A :class:`Clock` from a Clock, or from a ``now`` callable and a ``sleep``.

    Raises:
        ValueError: ``sleep`` given with a Clock (the Clock owns its sleep).
    """
    if isinstance(clock, Clock):
        if sleep is not None:
            raise ValueError("pass sleep= only with a now callable; a Clock owns its sleep")
        return clock
    return Clock(clock or time.monotonic, sleep or time.sleep)


def token_hex(nbytes: int = 4, fs: Optional[FileSystem] = None) -> str:
    """Random hex for unique names (temp files, tokens, journals, duplicates), drawn by ``fs``.

    The file system that will hold the name draws it (``FileSystem.random_hex``):
    the real one from ``secrets``, a simulated one from its seeded generator, so
    a simulation's names, and with them its trace, repeat with its seed.
    """
    return (fs or REAL_FS).random_hex(nbytes)


def at_fork(callback: Callable[[], None]) -> None:
    """Run ``callback`` in the child after every fork (new random name stems)."""
    os.register_at_fork(after_in_child=callback)


def lexists(fs: FileSystem, path: PathLike) -> bool:
    """True if ``path`` names anything (a dangling name counts), via ``fs.lstat``."""
    try:
        fs.lstat(path)
        return True
    except OSError as exc:
        if exc.errno in GONE or exc.errno == errno.ENOTDIR:
            return False
        raise


def is_dir(fs: FileSystem, path: PathLike) -> bool:
    """True if ``path`` is a directory, via ``fs.stat``."""
    try:
        return (fs.stat(path).st_mode & 0o170000) == 0o040000
    except OSError:
        return False


REAL_FS = FileSystem()
REAL_CLOCK = Clock()
