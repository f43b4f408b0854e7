"""``fsmw doctor``'s lock probes: does ``lockf`` work on this host, and across hosts?

Locks are taken with ``lockf`` only (``flock`` conflicts with it on NFS and
GlusterFS).  On this host they are "working" if another process is refused a
held lock and gets it once the holder is SIGKILLed; "not supported" on
ENOLCK/ENOSYS/EOPNOTSUPP (NFS without lockd, Lustre without ``flock``).
Across hosts, each run holds ``lock.<host>`` from a child process for
``--hold`` seconds and publishes that window, in the file system's clock, in
``<host>.json``; between its probes and while waiting out its own hold, a run
tries the lock of every host whose window covers now: taking it means locks
exclude only within one host ("local-only", NFS ``nolock``: tox-dev/filelock#6).
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from pathlib import Path
from typing import Any, Dict

from .common import WAIT_SECS, Result, _Children, _mp, fs_now
from .report import read_results

UNSUPPORTED = frozenset((errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP))
BUSY = frozenset((errno.EACCES, errno.EAGAIN))


def _try_lock(fd: int) -> bool:
    """Take and drop an exclusive lock: True if it was free, False if held elsewhere."""
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in BUSY:
            return False
        raise
    fcntl.lockf(fd, fcntl.LOCK_UN)
    return True


def _hold(path: str, secs: float, conn: Any) -> None:
    """Child: lock ``path`` for ``secs`` (or until the parent dies); send 0 or the errno."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        conn.send(exc.errno or -1)
        return
    conn.send(0)
    parent, deadline = os.getppid(), time.monotonic() + secs
    while time.monotonic() < deadline and os.getppid() == parent:
        time.sleep(max(0.0, min(0.1, deadline - time.monotonic())))
    if os.getppid() != parent:  # the doctor died: take the file away before the lock goes
        os.unlink(path)


def _start_holder(kids: _Children, path: Path, secs: float) -> Any:
    """A child holding ``path`` locked, or an errno (int) if it could not lock it."""
    mine, theirs = _mp.Pipe()
    proc = kids.start(_hold, str(path), secs, theirs)
    if not mine.poll(WAIT_SECS * 2):
        raise TimeoutError(f"the lock holder of {path} did not answer")
    code = mine.recv()
    return code if code else proc


def probe_fcntl(work: Path) -> Result:
    path = work / "fcntl"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            _try_lock(fd)
        except OSError as exc:
            if exc.errno in UNSUPPORTED:
                return dict(result="not supported", summary=f"not supported: lockf fails with "
                            f"{errno.errorcode.get(exc.errno or 0, exc.errno)} ({exc.strerror})")
            raise
        with _Children() as kids:
            holder = _start_holder(kids, path, 60.0)
            if isinstance(holder, int):
                raise OSError(holder, f"a child could not lock {path}: {os.strerror(holder)}")
            if _try_lock(fd):
                return dict(result="not excluding", summary="not excluding: a second process got a "
                            "lock that a live process holds")
            killed = time.monotonic()
            holder.kill()
            holder.join(WAIT_SECS)
            while not _try_lock(fd):
                if time.monotonic() - killed > WAIT_SECS:
                    return dict(result="stuck", summary=f"stuck: still held {WAIT_SECS:.0f} s "
                                "after its holder was SIGKILLed")
                time.sleep(0.001)
        ms = (time.monotonic() - killed) * 1000
        return dict(result="working", release_ms=ms, summary="working: refused while held, "
                    f"free {ms:.1f} ms after the holder was SIGKILLed")
    finally:
        os.close(fd)



def check_holds(doctor_dir: Path, work: Path, me: Result, checked: Dict[str, str], margin: float) -> None:
    """Try to lock each other host's lock file while its doctor says it holds it."""
    for other in read_results(doctor_dir, me["host"]):
        hold = other.get("hold")
        if other["host"] in checked or not isinstance(hold, dict):
            continue
        lock, start, until = Path(str(hold.get("lock"))).name, hold.get("from", 0), hold.get("until", 0)
        if not start + margin <= fs_now(work) <= until - margin:
            continue
        try:
            fd = os.open(doctor_dir / lock, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            got = True
        except OSError as exc:
            if exc.errno not in BUSY:
                continue
            got = False
        finally:
            os.close(fd)
        if not got or fs_now(work) <= until - margin:  # its hold may just have ended
            checked[other["host"]] = "local-only" if got else "working"


def cross_summary(checked: Dict[str, str], mount: Result, local: Result) -> Result:
    if local.get("result") != "working":
        return dict(result="not checked", summary="not checked: no working locks on this host")
    if mount["fstype"].startswith("nfs") and "nolock" in mount["options"].split(","):
        return dict(result="local-only", summary="local-only: NFS mounted with nolock")
    if not checked:
        return dict(result="not checked", summary="not checked: no other host's doctor held its lock "
                    "meanwhile (run it on two nodes at once, the first with a longer --hold)")
    bad = sorted(h for h, r in checked.items() if r != "working")
    if bad:
        return dict(result="local-only", hosts=checked, summary=f"local-only: this host took the "
                    f"lock {', '.join(bad)} held (NFS nolock?)")
    return dict(result="working", hosts=checked,
                summary=f"working: refused the lock {', '.join(sorted(checked))} held")
