"""fsmw through its public API (fsmw.Master / fsmw.Worker), one round of N tasks.

Default options except progress=False; --fsync -1 keeps the default (fsync
only on shared file systems), 1 forces it on, 0 off.  Workers exit on STOP,
after recording their peak memory (DIR/worker-<ID>.rss).

--io os (``fsmw``): process_file reads and writes with os.open/os.read/os.write,
as the framework-free script does.  --io text (``fsmw-text``): process_file
opens its files in text mode, the way users write it.  The master reads the
outputs with os-level I/O in both.
"""

from __future__ import annotations

import os
import sys
import time

import common  # bench/systems/, the script's own directory

import fsmw
FSYNC = {-1: None, 0: False, 1: True}


def read(path) -> bytes:
    """Plain os-level I/O, as in the framework-free script (no buffered-file overhead)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.read(fd, 4096)
    finally:
        os.close(fd)


def write(path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


class SquareWorker(fsmw.Worker):
    def __init__(self, store, wid, first, **kw):
        super().__init__(store, worker_id=wid, **kw)
        self.first = first

    def process_file(self, input_path, output_path):
        self.first()
        n = int(read(input_path))
        write(output_path, str(n * n).encode())


class TextSquareWorker(SquareWorker):
    def process_file(self, input_path, output_path):
        self.first()
        with open(input_path) as f:
            n = int(f.read())
        with open(output_path, "w") as f:
            f.write(str(n * n))


WORKERS = {"os": SquareWorker, "text": TextSquareWorker}


class SquareMaster(fsmw.Master):
    def __init__(self, store, n, mode, procs, **kw):
        super().__init__(store, **kw)
        self.n, self.mode, self.procs = n, mode, procs
        self.t0 = self.t_end = 0.0
        self.error = "no result"

    def create_input_files(self):
        if self.mode == "throughput":
            self.t0 = time.time()
        for i in range(self.n):
            self.create_input_file(f"t{i}", str(i))
        if self.mode == "firstclaim":
            self.t0 = time.time()
            common.go(self.procs)

    def process_output_files(self, outputs):
        pairs = [(int(k[1:]), int(read(p))) for k, p in outputs.items()]
        self.t_end = time.time()
        self.error = common.check_squares(pairs, self.n)
        return False


def main() -> None:
    a = common.parse()
    store = os.path.join(a.dir, "store")
    if a.role == "worker":
        w = WORKERS[a.io](store, a.arg, common.FirstClaim(a.dir, a.arg), fsync=FSYNC[a.fsync])
        common.worker_handshake()
        rc = w.run()
        common.write_worker_rss(a.dir, a.arg)
        sys.exit(rc)
    common.install_cleanup()
    procs = [common.spawn(common.worker_argv("fsmw_sys.py", a.dir, w, a.fsync, a.io)) for w in (1, 2)]
    common.wait_ready(procs)
    if a.mode == "throughput":
        common.go(procs)
    m = SquareMaster(store, a.arg, a.mode, procs, fsync=FSYNC[a.fsync], progress=False)
    summary = m.run()
    err = m.error
    if err is None and (summary.done != a.arg or summary.failed):
        err = f"summary: {summary}"
    for p in procs:
        p.wait(timeout=30)
    common.report(m.t0, m.t_end, a.arg, err, a.dir, duplicates=summary.duplicates)


if __name__ == "__main__":
    main()
