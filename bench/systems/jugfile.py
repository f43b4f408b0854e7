"""The jugfile: N tasks square(i); N from $BENCH_N.

In a `jug execute` process ($BENCH_WORKER set) it first does the benchmark
handshake (print "ready", wait for "go"), so that the tasks are created, i.e.
"enqueued", only after the clock started.
"""

import os
import sys
import time

from jug import TaskGenerator

_wid = os.environ.get("BENCH_WORKER")
_first = []

if _wid and not os.environ.get("BENCH_HANDSHAKE_DONE"):
    os.environ["BENCH_HANDSHAKE_DONE"] = "1"  # jug execute may re-import the jugfile
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
