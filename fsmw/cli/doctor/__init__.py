"""``fsmw doctor``: measure what the file system under a store really does.

fsmw's safety rests on three primitives, so they alone decide the exit code:
an ``O_CREAT|O_EXCL`` create of an existing name fails with EEXIST (claims),
``link`` onto an existing name fails and leaves it alone (no-clobber publish)
and ``rename`` replaces a name without a moment where it is missing (inputs,
markers).  Create and link are also raced by 8 processes over 50 names: each
name must have exactly one winner (``races``).  A retransmitted NFS LINK that reports
EEXIST although it worked cannot be provoked; ``_core.atomic`` checks the link count.

Everything else is reported, not judged:
  * fcntl locks, on this host and across hosts (``locks``): reported
    as "working", "not supported", "not excluding", "stuck" or "local-only".
  * mtime granularity, and this host's clock minus the file system's (a new
    file's mtime, and a ``utime(fd)`` stamp, against ``time.time()`` around
    the call; on GlusterFS the first comes from the client daemon's clock,
    the second from the kernel's).  fsmw's leases ignore clocks; users' other
    tools do not.
  * how soon another process sees a new name in a listing and a new mtime in
    ``stat`` (``races``).  Processes of one host share the kernel's caches, so this is
    ~0 here; between hosts NFS may cache attributes for up to a minute, which
    one host cannot observe: the recommended lease keeps fsmw's margin.
  * the cost of listing the store's largest directory.
Probe files live in a per-run directory under ``STORE/.fsmw-doctor/`` that is
removed afterwards; only ``<host>.json`` stays, so runs on other nodes can
compare hosts, and the recommended options use every host's figures
(``report`` reads those files and renders the report).
"""

from __future__ import annotations

import argparse
import errno
import functools
import json
import os
import secrets
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from ..._core.atomic import write_replace
from .common import _CREATE, WAIT_SECS, Result, _Children, _create, _mp, _ok, fs_now
from .races import probe_races, probe_visibility
from .locks import cross_summary, _start_holder, check_holds, probe_fcntl
from .report import TITLES, compare, format_text, read_results, recommend
from ..._core.errors import StoreError
from ..._core.fsinfo import mount_of
from ..._core.owner import host_name, safe_host
from ..._core.store import Store

DOCTOR_DIR = ".fsmw-doctor"
ESSENTIAL = {key: TITLES[key] for key in ("excl", "excl_race", "link", "link_race", "rename")}
HOLD_MARGIN_SECS = 1.0  # another host's hold counts only this far inside its window (1 s mtimes)


def probe_excl(work: Path) -> Result:
    _create(work / "excl")
    try:
        _create(work / "excl")
    except FileExistsError:
        return _ok(True, "a second create of the same name fails with EEXIST")
    return _ok(False, "a second O_EXCL create of an existing name succeeded")


def probe_link(work: Path) -> Result:
    new, old = work / "link.new", work / "link.old"
    new.write_bytes(b"new")
    old.write_bytes(b"old")
    try:
        os.link(new, old)
        return _ok(False, "link() onto an existing name succeeded")
    except FileExistsError:
        pass
    if old.read_bytes() != b"old":
        return _ok(False, "link() failed with EEXIST but changed the existing file")
    os.link(new, work / "link.more")
    if os.stat(new).st_nlink != 2:
        return _ok(False, "a file linked to a second name does not count 2 links")
    return _ok(True, "EEXIST onto an existing name, target unchanged (NFS retransmits not probed)")


def probe_rename(work: Path) -> Result:
    """rename() replaces; a reader in another process never finds the name missing."""
    dst = work / "rename.dst"
    dst.write_bytes(b"0")
    with _Children() as kids:
        stop, counts = _mp.Event(), _mp.Array("i", 3)
        kids.start(_open_loop, str(dst), stop, counts)
        deadline = time.monotonic() + WAIT_SECS
        while counts[2] == 0:  # the reader has started
            if time.monotonic() > deadline:
                raise TimeoutError("the reading process did not start")
            time.sleep(0.001)
        for i in range(1, 201):
            (work / "rename.src").write_bytes(str(i).encode())
            os.rename(work / "rename.src", dst)
        stop.set()
        kids.procs[0].join(WAIT_SECS)
    if dst.read_bytes() != b"200" or (work / "rename.src").exists():
        return _ok(False, "rename() did not replace the existing name")
    if counts[0]:
        return _ok(False, f"a reader found the name missing {counts[0]} times during 200 renames")
    return _ok(True, f"replaces; a reader never found the name missing ({counts[2]} opens, "
                     f"{counts[1]} ESTALE)", missing=counts[0], estale=counts[1])


def _open_loop(path: str, stop: Any, counts: Any) -> None:
    parent = os.getppid()
    while not stop.is_set() and os.getppid() == parent:
        try:
            os.close(os.open(path, os.O_RDONLY))
        except OSError as exc:
            counts[0 if exc.errno == errno.ENOENT else 1] += 1
        counts[2] += 1


def probe_mtime(work: Path) -> Result:
    """Stamp one file with ``utime(fd)`` until its mtime changed a few times (<= 2.1 s)."""
    fd = os.open(work / "mtime", _CREATE, 0o600)
    stamps: List[int] = []
    try:
        deadline = time.monotonic() + 2.1  # a 1 s resolution shows within that
        while len(set(stamps)) < 6 and len(stamps) < 20000 and time.monotonic() < deadline:
            os.utime(fd)
            stamps.append(os.fstat(fd).st_mtime_ns)
    finally:
        os.close(fd)
    units = (("s", 10**9), ("ms", 10**6), ("us", 10**3))
    unit = next((name for name, size in units if all(s % size == 0 for s in stamps)), "ns")
    distinct = sorted(set(stamps))
    steps = [distinct[i + 1] - distinct[i] for i in range(len(distinct) - 1)]
    step_s = min(steps) / 1e9 if steps else 1.0
    return dict(unit=unit, step_s=step_s,
                summary=f"stored in {unit}; it moves in steps of {step_s * 1000:.3g} ms or more")


def probe_clock(work: Path, step_s: float) -> Result:
    """This host's clock minus the file system's, from new files' mtimes."""
    best: Optional[tuple] = None
    for i in range(5):
        t0 = time.time()
        fd = os.open(work / f"clock.{i}", _CREATE, 0o600)
        t1 = time.time()
        try:
            created = os.fstat(fd).st_mtime_ns / 1e9
            t2 = time.time()
            os.utime(fd)  # futimens(NULL): "now" as the file system (or NFS server) sees it
            t3 = time.time()
            stamped = os.fstat(fd).st_mtime_ns / 1e9
        finally:
            os.close(fd)
        trial = (max(t1 - t0, t3 - t2) / 2, (t0 + t1) / 2 - created, (t2 + t3) / 2 - stamped)
        best = trial if best is None or trial[0] < best[0] else best
    assert best is not None
    window, offset, utime_offset = best
    unc = window + step_s  # a stored mtime may lag by one step (coarse or truncated clocks)
    return dict(offset_s=offset, uncertainty_s=unc, utime_offset_s=utime_offset,
                summary=f"{offset:+.3f} s +- {unc:.3f} s (utime(fd) stamp: {utime_offset:+.3f} s)")


def probe_listing(store: Path) -> Result:
    """Time a listing of the store and of each directory in it; report the largest."""
    largest = (-1, 0.0, store)
    for directory in [store] + sorted(p for p in store.iterdir() if p.name != DOCTOR_DIR and p.is_dir()):
        started = time.monotonic()
        count = len(os.listdir(directory))
        largest = max(largest, (count, time.monotonic() - started, directory))
    count, secs, directory = largest
    return dict(entries=count, ms=secs * 1000, directory=str(directory),
                summary=f"{count} entries in {secs * 1000:.2f} ms ({directory})")


def run_doctor(store: Path, hold: float = 5.0) -> Result:
    """Probe the file system under ``store``; return this host's result with the comparison.

    Raises:
        StoreError: ``store`` is not a directory or the probe directory cannot be made.
    """
    doctor_dir, work = _make_dirs(store)
    me: Result = dict(fsmw_doctor=1, host=host_name(), pid=os.getpid(), store=str(store.resolve()),
                      mount=mount_of(store), hold=None)
    lock, result_file = doctor_dir / f"lock.{safe_host()}", doctor_dir / f"{safe_host()}.json"
    holder: Any = None
    try:
        with _Children() as kids:
            if hold > 0:
                start = fs_now(work)
                holder = _start_holder(kids, lock, hold)
                if not isinstance(holder, int):
                    me["hold"] = dict(lock=lock.name, seconds=hold, **{"from": start, "until": start + hold})
                    write_replace(result_file, json.dumps(me, indent=1).encode())
            checked: Dict[str, str] = {}
            between = functools.partial(check_holds, doctor_dir, work, me, checked, HOLD_MARGIN_SECS)
            me["probes"] = probes = _probe_all(store, work, between)
            deadline = time.monotonic() + hold + WAIT_SECS
            while me["hold"] and holder.is_alive() and time.monotonic() < deadline:
                holder.join(0.25)  # meanwhile, check doctors started on other nodes
                between()
            probes["fcntl_hosts"] = cross_summary(checked, me["mount"], probes["fcntl"])
            me["measured_at"] = fs_now(work)
        write_replace(result_file, json.dumps(me, indent=1).encode())
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if me["hold"]:
            lock.unlink(missing_ok=True)
    others = read_results(doctor_dir, me["host"])
    return dict(me, hosts=compare(me, others), recommendations=recommend(me, others))


def _make_dirs(store: Path) -> Tuple[Path, Path]:
    """Make ``STORE/.fsmw-doctor`` (if missing) and this run's probe directory in it.

    Raises:
        StoreError: ``store`` is not a directory or the probe directory cannot be made.
    """
    layout = Store(store)
    layout.check()
    doctor_dir = Path(layout.path(DOCTOR_DIR))
    work = doctor_dir / f"run.{safe_host()}.{os.getpid()}.{secrets.token_hex(4)}"
    try:
        doctor_dir.mkdir(exist_ok=True)
        work.mkdir()
    except OSError as exc:
        raise StoreError(f"{doctor_dir}: cannot create the probe directory ({exc.strerror})") from None
    return doctor_dir, work


def _probe_all(store: Path, work: Path, between: Callable[[], None]) -> Result:
    """Run every probe; ``between`` them, check other hosts' locks (their hold may be short)."""
    probes: Result = {}

    def run(keys: str, fn: Callable[..., Any], *args: Any) -> None:
        between()
        try:
            found = fn(*args)
            probes.update(found if " " in keys else {keys: found})
        except Exception as exc:  # a probe that fails is a finding, not a crash of the doctor
            probes.update({k: _ok(False, f"{fn.__name__} failed: {exc}", result="error")
                           for k in keys.split()})

    for key, fn in (("excl", probe_excl), ("link", probe_link), ("rename", probe_rename),
                    ("fcntl", probe_fcntl), ("mtime", probe_mtime)):
        run(key, fn, work)
    run("excl_race link_race", probe_races, work)
    run("clock", probe_clock, work, probes["mtime"].get("step_s", 1.0))
    run("new_file utime", probe_visibility, work)
    run("listing", probe_listing, store)
    return probes


def doctor_command(args: argparse.Namespace) -> int:
    """``fsmw doctor STORE [--json] [--hold SECS]``: exit 1 if an essential primitive is broken."""
    report = run_doctor(Path(args.store), hold=args.hold)
    print(json.dumps(report, indent=1) if args.json else format_text(report))
    broken = [title for key, title in ESSENTIAL.items() if not report["probes"][key]["ok"]]
    if broken:
        print(f"fsmw doctor: {Path(args.store, DOCTOR_DIR)}: {', '.join(broken)} broken on this file "
              "system: fsmw cannot run safely there", file=sys.stderr)
        return 1
    return 0
