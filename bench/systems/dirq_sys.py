"""dirq QueueSimple: the master adds N items to DIR/q; two consumers
lock/get/remove each item and add "<i> <i*i>" to a second QueueSimple DIR/r;
the master consumes DIR/r (lock/get/remove) until it has N results, then
SIGTERMs the consumers (each records its peak memory as it goes).  Idle
consumers and the idle master sleep 0.01 s between passes.  dirq does not
fsync.

--io text (``dirq-text``) hands add() strings instead of bytes, as Python 3
users may write it; dirq then writes them through codecs.open in UTF-8 mode
(after an os.path.exists check).  get() has no text mode (it always reads
bytes, with open(path, "rb")), so reads are the same in both variants.
"""

from __future__ import annotations

import os
import time

import common  # bench/systems/, the script's own directory

from dirq.QueueSimple import QueueSimple

IDLE = 0.01


def encoder(io: str):
    """What add() is given: bytes (--io os) or str (--io text)."""
    return str if io == "text" else (lambda s: s.encode())


def worker(d: str, wid: int, io: str) -> None:
    q = QueueSimple(os.path.join(d, "q"))
    r = QueueSimple(os.path.join(d, "r"))
    enc = encoder(io)
    first = common.FirstClaim(d, wid)
    common.rss_on_sigterm(d, wid)
    common.worker_handshake()
    while True:
        progressed = False
        for name in q:
            if not q.lock(name):
                continue
            first()
            n = int(q.get(name))
            r.add(enc(f"{n} {n * n}"))
            q.remove(name)
            progressed = True
        if not progressed:
            time.sleep(IDLE)


def master(d: str, n: int, mode: str, io: str) -> None:
    q = QueueSimple(os.path.join(d, "q"))
    r = QueueSimple(os.path.join(d, "r"))
    enc = encoder(io)
    procs = [common.spawn(common.worker_argv("dirq_sys.py", d, w, 0, io)) for w in (1, 2)]
    common.wait_ready(procs)

    def enqueue() -> None:
        for i in range(n):
            q.add(enc(str(i)))

    t0 = common.start_clock(mode, procs, enqueue)
    pairs = []
    while len(pairs) < n:
        got = 0
        for name in r:
            if not r.lock(name):
                continue
            i, v = r.get(name).split()
            r.remove(name)
            pairs.append((int(i), int(v)))
            got += 1
        if not got:
            time.sleep(IDLE)
    t_end = time.time()
    common.report(t0, t_end, n, common.check_squares(pairs, n), d)


if __name__ == "__main__":
    a = common.parse()
    if a.role == "worker":
        worker(a.dir, a.arg, a.io)
    else:
        common.install_cleanup()
        master(a.dir, a.arg, a.mode, a.io)
