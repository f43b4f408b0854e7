"""Shared plumbing for the benchmark's per-system scripts.

Every system script has two roles:

  ``python <system>.py master DIR N --mode throughput|firstclaim [--fsync 0|1]``
      spawns two workers, runs the workload, checks that every square is
      present exactly once, kills its children on exit, and prints one JSON
      line: {"wall": s, "first_claim": s or null, "ok": bool, ...}.
  ``python <system>.py worker DIR ID [--fsync 0|1]``
      a consumer process.

Worker handshake: after its imports and set-up a worker prints ``ready`` on
stdout and blocks on a line from stdin (``go``).  Interpreter start-up and
imports are therefore never inside a timed interval.  A worker writes the
wall-clock time (time.time()) of its first successful claim to
``DIR/first.<ID>``, and its peak resident memory (VmHWM), as it exits, to
``DIR/worker-<ID>.rss`` (JSON); the master ends its workers before it reports.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Dict, List, Optional, Sequence

PY = sys.executable
HERE = os.path.dirname(os.path.abspath(__file__))

_children: List[subprocess.Popen] = []


def parse(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    p.add_argument("role", choices=["master", "worker"])
    p.add_argument("dir")
    p.add_argument("arg", type=int, help="N for the master, worker id for a worker")
    p.add_argument("--mode", choices=["throughput", "firstclaim"], default="throughput")
    p.add_argument("--fsync", type=int, default=0)
    p.add_argument("--io", choices=["os", "text"], default="os",
                   help="os: os.open/os.read/os.write; text: open() in text mode, as users write it")
    return p.parse_args(argv)


def kill_children() -> None:
    for p in _children:
        if p.poll() is None:
            try:
                p.terminate()
            except OSError:
                pass
    deadline = time.time() + 5
    for p in _children:
        try:
            p.wait(timeout=max(0.0, deadline - time.time()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def _on_term(signum, frame):  # turn SIGTERM into SystemExit so finally/atexit run
    sys.exit(128 + signum)


def install_cleanup() -> None:
    atexit.register(kill_children)
    signal.signal(signal.SIGTERM, _on_term)


def _drain(stream) -> None:
    for _ in stream:
        pass


def spawn(argv: List[str], env: Optional[Dict[str, str]] = None, cwd: Optional[str] = None,
          handshake: bool = True) -> subprocess.Popen:
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                         env=env, cwd=cwd)
    _children.append(p)
    return p


def wait_ready(procs: List[subprocess.Popen]) -> None:
    for p in procs:
        line = p.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError(f"worker {p.args} did not get ready: {line!r}")
        threading.Thread(target=_drain, args=(p.stdout,), daemon=True).start()


def start_clock(mode: str, procs: List[subprocess.Popen], enqueue) -> float:
    """Start the clock and return it: before the first enqueue ("throughput"), or
    with all N tasks already pending when the workers are released ("firstclaim")."""
    if mode == "throughput":
        go(procs)
        t0 = time.time()
        enqueue()
    else:
        enqueue()
        t0 = time.time()
        go(procs)
    return t0


def go(procs: List[subprocess.Popen]) -> None:
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()


def worker_handshake() -> None:
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    sys.stdin.readline()


class FirstClaim:
    """Records the time of this worker's first claim in DIR/first.<ID>."""

    def __init__(self, directory: str, wid: int) -> None:
        self.path = os.path.join(directory, f"first.{wid}")
        self.done = False

    def __call__(self) -> None:
        if not self.done:
            self.done = True
            t = time.time()
            with open(self.path, "w") as f:
                f.write(repr(t))


def first_claim_time(directory: str) -> Optional[float]:
    times = []
    for name in os.listdir(directory):
        if name.startswith("first."):
            with open(os.path.join(directory, name)) as f:
                times.append(float(f.read()))
    return min(times) if times else None


def check_squares(pairs, n: int) -> Optional[str]:
    """pairs: iterable of (i, value). None if every square 0..n-1 is there exactly once."""
    seen = [0] * n
    for i, v in pairs:
        if not 0 <= i < n:
            return f"unexpected task {i}"
        if v != i * i:
            return f"task {i}: wrong value {v}"
        seen[i] += 1
    missing = sum(1 for c in seen if c == 0)
    dups = sum(1 for c in seen if c > 1)
    if missing or dups:
        return f"{missing} missing, {dups} duplicated"
    return None


def peak_rss_mb() -> Optional[float]:
    """This process's peak resident memory since its exec (VmHWM; ru_maxrss would
    include the parent's size across fork and exec)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def rss_path(directory: str, wid) -> str:
    return os.path.join(directory, f"worker-{wid}.rss")


def write_worker_rss(directory: str, wid) -> None:
    """Record this worker's peak memory in DIR/worker-<ID>.rss (temp file, then rename)."""
    path = rss_path(directory, wid)
    with open(path + ".tmp", "w") as f:
        json.dump({"worker": wid, "rss_mb": peak_rss_mb()}, f)
    os.rename(path + ".tmp", path)


def rss_on_sigterm(directory: str, wid: int) -> None:
    """For a worker that the master ends with SIGTERM: record its peak memory, then exit."""
    def handler(signum, frame):
        try:
            write_worker_rss(directory, wid)
        finally:
            os._exit(0)
    signal.signal(signal.SIGTERM, handler)


def worker_rss(directory: str) -> List[float]:
    """The peak memory each worker recorded, in MB (a worker that did not record it is absent)."""
    found = []
    for name in os.listdir(directory):
        if name.startswith("worker-") and name.endswith(".rss"):
            with open(os.path.join(directory, name)) as f:
                mb = json.load(f).get("rss_mb")
            if mb is not None:
                found.append(mb)
    return found


def report(t0: float, t_end: float, n: int, error: Optional[str], directory: str,
           **extra) -> None:
    """Print the RESULT line; ends the workers first, so that they record their peak memory."""
    kill_children()
    fc = first_claim_time(directory)
    workers = worker_rss(directory)
    out = {"wall": t_end - t0, "n": n, "ok": error is None, "error": error,
           "first_claim": (fc - t0) if fc is not None else None,
           "master_rss_mb": peak_rss_mb(), "worker_rss_mb": max(workers) if workers else None,
           "workers_rss_reported": len(workers)}
    out.update(extra)
    print("RESULT " + json.dumps(out), flush=True)


# On a multi-node file system (bench/run.py --fs gluster) worker ID runs on
# another node: BENCH_NODES = {"<ID>": {"prefix": [argv...], "from": "<master's
# mount>", "to": "<that node's mount>"}}.
NODES: Dict[str, dict] = json.loads(os.environ.get("BENCH_NODES") or "{}")


def on_node(wid: int, argv: List[str], env: Optional[Dict[str, str]] = None,
            cwd: Optional[str] = None):
    """(argv, env, cwd) for a worker process run on worker ``wid``'s node."""
    node = NODES.get(str(wid))
    if not node:
        return argv, env, cwd

    def moved(x: Optional[str]) -> Optional[str]:
        return x.replace(node["from"], node["to"], 1) if x else x

    env = {k: moved(v) or "" for k, v in env.items()} if env else env
    return node["prefix"] + [moved(x) or "" for x in argv], env, moved(cwd)


def worker_argv(script: str, directory: str, wid: int, fsync: int, io: str = "os") -> List[str]:
    node = NODES.get(str(wid))
    prefix: List[str] = []
    if node:
        prefix, directory = node["prefix"], directory.replace(node["from"], node["to"], 1)
    return prefix + [PY, os.path.join(HERE, script), "worker", directory, str(wid), "--fsync", str(fsync),
                     "--io", io]
