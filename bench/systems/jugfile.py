"""The jugfile: N tasks square(i); N from $BENCH_N.

In a `jug execute` process ($BENCH_WORKER set) it first does the benchmark
handshake (print "ready", wait for "go"), so that the tasks are created, i.e.
"enqueued", only after the clock started, and at its exit it records its peak
memory (VmHWM) in $BENCH_DIR/worker-<ID>.rss, as the other systems' workers do.
"""

import atexit
import json
import os
import sys
import time

from jug import TaskGenerator

_wid = os.environ.get("BENCH_WORKER")
_first = []


def _record_rss():
    with open("/proc/self/status") as f:
        kb = next((int(x.split()[1]) for x in f if x.startswith("VmHWM:")), None)
    path = os.path.join(os.environ["BENCH_DIR"], f"worker-{_wid}.rss")
    with open(path + ".tmp", "w") as f:
        json.dump({"worker": _wid, "rss_mb": None if kb is None else kb / 1024}, f)
    os.rename(path + ".tmp", path)


if _wid and not os.environ.get("BENCH_HANDSHAKE_DONE"):
    os.environ["BENCH_HANDSHAKE_DONE"] = "1"  # jug execute may re-import the jugfile
    atexit.register(_record_rss)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    sys.stdin.readline()


@TaskGenerator
def square(i):
    if _wid and not _first:
        _first.append(1)
        with open(os.path.join(os.environ["BENCH_DIR"], "first." + _wid), "w") as f:
            f.write(repr(time.time()))
    return i * i


tasks = [square(i) for i in range(int(os.environ["BENCH_N"]))]
