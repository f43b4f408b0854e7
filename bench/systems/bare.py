"""Framework-free lock-file protocol: only the essential system calls.

Layout under DIR: in/<i> (inputs), claim/<i> (claims), out/<i> (outputs).
  master: write in/.t<i> then rename to in/<i>; poll listdir(out) until N
          results, then read them.
  worker: listdir(in); for each name not yet seen claimed, open claim/<i>
          with O_CREAT|O_EXCL (the claim); read in/<i>; write out/.t<i>;
          rename to out/<i>.  Idle: sleep 0.01 s and list again.
No heartbeat, no lease, no retries, no round, no STOP: the master SIGTERMs the
workers when it has every result (a worker records its peak memory as it goes).
--fsync 1 adds an fsync before each rename.
"""

from __future__ import annotations

import os
import time

import common  # bench/systems/, the script's own directory

IDLE = 0.01


def write_atomic(directory: str, name: str, data: bytes, fsync: bool) -> None:
    tmp = os.path.join(directory, ".t" + name)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, os.path.join(directory, name))


def read(path: str) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.read(fd, 4096)
    finally:
        os.close(fd)


def worker(d: str, wid: int, fsync: bool) -> None:
    din, dclaim, dout = (os.path.join(d, x) for x in ("in", "claim", "out"))
    first = common.FirstClaim(d, wid)
    common.rss_on_sigterm(d, wid)
    common.worker_handshake()
    seen = set()
    while True:
        progressed = False
        for name in os.listdir(din):
            if name in seen or name.startswith("."):
                continue
            seen.add(name)
            try:
                os.close(os.open(os.path.join(dclaim, name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
            except FileExistsError:
                continue
            first()
            n = int(read(os.path.join(din, name)))
            write_atomic(dout, name, str(n * n).encode(), fsync)
            progressed = True
        if not progressed:
            time.sleep(IDLE)


def master(d: str, n: int, mode: str, fsync: bool) -> None:
    for x in ("in", "claim", "out"):
        os.mkdir(os.path.join(d, x))
    din, dout = os.path.join(d, "in"), os.path.join(d, "out")
    procs = [common.spawn(common.worker_argv("bare.py", d, w, int(fsync))) for w in (1, 2)]
    common.wait_ready(procs)

    def enqueue() -> None:
        for i in range(n):
            write_atomic(din, str(i), str(i).encode(), fsync)

    t0 = common.start_clock(mode, procs, enqueue)
    done = set()
    while len(done) < n:
        new = [x for x in os.listdir(dout) if not x.startswith(".") and x not in done]
        if not new:
            time.sleep(IDLE)
            continue
        done.update(new)
    pairs = [(int(x), int(read(os.path.join(dout, x)))) for x in done]
    t_end = time.time()
    common.report(t0, t_end, n, common.check_squares(pairs, n), d)


if __name__ == "__main__":
    a = common.parse()
    if a.role == "worker":
        worker(a.dir, a.arg, bool(a.fsync))
    else:
        common.install_cleanup()
        master(a.dir, a.arg, a.mode, bool(a.fsync))
