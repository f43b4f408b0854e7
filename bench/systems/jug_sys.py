"""jug: a jugfile with N tasks, two `jug execute` processes, then the master
collects every value with jug's own loading (jug.init + jug.value).

The clock starts when the master releases the two `jug execute` processes,
which then import the jugfile body (creating, i.e. enqueuing, the N tasks),
and stops when the master has loaded all N values.  jug's default wait cycle
(12 s when every remaining task is locked by the other process) is lowered to
0.01 s (--wait-cycle-time), like the idle sleep of the other systems.
jug's file store fsyncs each result it writes.
"""

from __future__ import annotations

import os
import shutil
import time

import common  # bench/systems/, the script's own directory

IDLE = 0.01


def main() -> None:
    a = common.parse()
    d, n = a.dir, a.arg
    common.install_cleanup()
    jugfile = os.path.join(d, "benchjug.py")
    shutil.copy(os.path.join(common.HERE, "jugfile.py"), jugfile)
    jugdir = os.path.join(d, "benchjug.jugdata")
    jug = os.path.join(os.path.dirname(common.PY), "jug")
    procs = []
    for w in (1, 2):
        env = dict(os.environ, BENCH_N=str(n), BENCH_WORKER=str(w), BENCH_DIR=d)
        env.pop("BENCH_HANDSHAKE_DONE", None)
        argv, env, cwd = common.on_node(w, [jug, "execute", "--jugdir", jugdir, "--wait-cycle-time",
                                            str(IDLE), "--nr-wait-cycles", "100000", jugfile], env, d)
        procs.append(common.spawn(argv, env=env, cwd=cwd))
    common.wait_ready(procs)
    if a.mode == "firstclaim":
        pass  # jug has no enqueue separate from `jug execute`: N tasks are pending in the jugfile
    t0 = time.time()
    common.go(procs)
    rcs = [p.wait() for p in procs]
    os.environ["BENCH_N"] = str(n)
    os.environ.pop("BENCH_WORKER", None)
    from jug import init, value  # init loads the jugfile by its path
    _store, space = init(jugfile, jugdir)
    vals = value(space["tasks"])
    t_end = time.time()
    err = common.check_squares(enumerate(vals), n)
    if err is None and any(rcs):
        err = f"jug execute exit codes {rcs}"
    common.report(t0, t_end, n, err, d)


if __name__ == "__main__":
    main()
