"""Side-by-side benchmark of fsmw and reference systems (see bench/README.md).

Usage, from the repository root (``make bench BENCH_ARGS=...``):
    bench/.venv/bin/python -m bench.run [--plan "shm:1000,10000,100000 disk:..."]
        [--fs shm,disk,gluster] [--n N,N] [--million [--million-reps 1]] [--reps 3] [--systems ...]
        [--strace-n 10000] [--idle-workers 100] [--out bench/results]

Writes <out>/bench-<UTC time>.md and .json (and prints the Markdown table and
the targets of issue 12, see bench/targets.py).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

from bench import executor as executor_bench
from bench.targets import MILLION, render, targets
from tools.lab.gluster import Lab  # the cluster tier's lab (never run both at once)

HERE = os.path.dirname(os.path.abspath(__file__))
PY = sys.executable

# name -> (script, extra args); the first entry is the baseline for ratios.
SYSTEMS: Dict[str, List[str]] = {
    "bare": ["bare.py", "--fsync", "0"],
    "bare-fsync": ["bare.py", "--fsync", "1"],
    "fsmw": ["fsmw_sys.py", "--fsync", "-1"],  # defaults: fsync only on shared file systems
    "fsmw-fsync": ["fsmw_sys.py", "--fsync", "1"],  # fsync forced on, as on a shared one
    "fsmw-text": ["fsmw_sys.py", "--fsync", "-1", "--io", "text"],  # process_file with open()
    "dirq": ["dirq_sys.py"],
    "dirq-text": ["dirq_sys.py", "--io", "text"],  # add() given str, not bytes
    "jug": ["jug_sys.py"],
}
BASELINE = "bare"

FILESYSTEMS = {"shm": "/dev/shm", "disk": "/var/tmp"}

# System calls that touch the name space or inode metadata (i.e. what costs a
# metadata-server round trip on a shared file system).  fstat on an open fd,
# read/write/close and fsync are not in it; fsync is reported on its own.
METADATA_CALLS = frozenset("""
open openat openat2 creat
stat lstat stat64 lstat64 newfstatat fstatat64 statx statfs
access faccessat faccessat2 readlink readlinkat
rename renameat renameat2 link linkat symlink symlinkat unlink unlinkat
mkdir mkdirat rmdir getdents getdents64
utime utimes utimensat futimesat chmod fchmodat chown fchownat lchown truncate
""".split())
FSYNC_CALLS = frozenset(["fsync", "fdatasync", "sync_file_range", "syncfs"])


# Stores on these file systems are removed only at the end of the benchmark: on this VM's
# ext4 (no journal) the inode allocator scans past every inode deleted in the last 60-300 s
# at each create, so removing one run's store slows the next run down by up to 4x (see
# docs/performance.md, "ext4 on this VM").  Renaming a store away frees no inode.
DEFERRED_REMOVAL = frozenset(["disk"])
_trash: Dict[str, str] = {}


def discard(base: str, fs: str) -> None:
    """Remove a run's store now, or (``DEFERRED_REMOVAL``) move it aside for ``empty_trash``."""
    if fs not in DEFERRED_REMOVAL:
        shutil.rmtree(base, ignore_errors=True)
        return
    if fs not in _trash:
        _trash[fs] = tempfile.mkdtemp(prefix="fsmw-bench-trash-", dir=FILESYSTEMS[fs])
    os.rename(base, os.path.join(_trash[fs], os.path.basename(base)))


def empty_trash() -> None:
    for trash in _trash.values():
        shutil.rmtree(trash, ignore_errors=True)
    _trash.clear()
    for path in _mounts.values():  # big_tmpfs's mount
        subprocess.run(["umount", path], check=False)
        shutil.rmtree(path, ignore_errors=True)
    _mounts.clear()


def big_tmpfs(n: int) -> Optional[str]:
    """A tmpfs of its own for a run of ``n`` tasks that /dev/shm has too few inodes for.

    A task costs about three inodes on tmpfs (input, output, and a hard link
    counts as one there), and /dev/shm has about three million on this VM.
    As root, one tmpfs with room for 5n inodes is mounted for the benchmark
    (unmounted by ``empty_trash``); otherwise None (the run uses /dev/shm).
    """
    free = os.statvfs(FILESYSTEMS["shm"]).f_ffree
    if free >= 4 * n or os.geteuid() != 0:
        return None
    if "big" not in _mounts:
        path = tempfile.mkdtemp(prefix="fsmw-bench-tmpfs-")
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size=16g,nr_inodes={5 * n},mode=0700", "tmpfs",
                        path], check=True)
        _mounts["big"] = path
    return _mounts["big"]


_mounts: Dict[str, str] = {}


def run_one(system: str, fs: str, n: int, mode: str, timeout: float,
            strace_file: Optional[str] = None) -> dict:
    parent = (big_tmpfs(n) if fs == "shm" else None) or FILESYSTEMS[fs]
    base = tempfile.mkdtemp(prefix=f"fsmw-bench-{system}-", dir=parent)
    script, *extra = SYSTEMS[system]
    argv = [PY, os.path.join(HERE, "systems", script), "master", base, str(n), "--mode", mode, *extra]
    if strace_file:
        argv = ["strace", "-f", "-c", "-o", strace_file, *argv]
    env = dict(os.environ, BENCH_NODES=NODE_MAPS.get(fs, ""))
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, env=env)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the master and its workers
        out, err = proc.communicate()
        discard(base, fs)
        return {"ok": False, "error": f"timed out after {timeout:.0f} s: {(err or '').strip()[-300:]}"}
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        discard(base, fs)
        raise
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # stragglers, if any
        except ProcessLookupError:
            pass
    discard(base, fs)
    lines = [x for x in out.splitlines() if x.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        return {"ok": False, "error": f"rc={proc.returncode}: {err.strip()[-500:]}"}
    return json.loads(lines[-1][len("RESULT "):])


def parse_strace(path: str) -> Dict[str, int]:
    calls: Dict[str, int] = {}
    with open(path) as f:
        for line in f:
            tok = line.split()
            if len(tok) >= 5 and re.match(r"^[\d.]+$", tok[0]) and tok[-1] != "total":
                calls[tok[-1]] = calls.get(tok[-1], 0) + int(tok[3])
    return calls


NODE_MAPS: Dict[str, str] = {}  # file system -> BENCH_NODES for its runs (see systems/common.py)
LAB_DIR = "/var/tmp/fsmw-bench-lab"


def gluster_up(log):
    """Start the GlusterFS lab of the cluster tests (nodes master, n1, n2), or None."""
    if os.geteuid() != 0 or not shutil.which("glusterd") or not shutil.which("glusterfs"):
        return None
    lab = Lab(Path(LAB_DIR))
    try:
        lab.up(["master", "n1", "n2"])
    except Exception as exc:  # noqa: BLE001
        log(f"gluster lab did not start: {exc}")
        lab.down()
        return None
    master = lab.nodes["master"]
    FILESYSTEMS["gluster"] = str(master.mount)
    NODE_MAPS["gluster"] = json.dumps({str(i): {"prefix": lab.nodes[name].cmd([]),
                                                "from": str(master.mount),
                                                "to": str(lab.nodes[name].mount)}
                                       for i, name in ((1, "n1"), (2, "n2"))})
    log("gluster lab up: master on the host through node 'master', workers 1 and 2 on nodes n1, n2")
    return lab


IDLE_SCRIPT = """
import sys, fsmw
sys.exit(fsmw.Worker(sys.argv[1], int(sys.argv[2])).run())
"""


def idle_listings(workers: int, secs: float, log) -> Optional[dict]:
    """Run idle fsmw workers at default settings under strace; count their calls.

    The store holds one open, sealed round with nothing in it.  Calls are
    counted in the window from secs/2 to secs (after the workers' idle pauses
    have backed off to their default ceiling).
    """
    if not shutil.which("strace"):
        return None
    base = tempfile.mkdtemp(prefix="fsmw-bench-idle-", dir="/dev/shm")
    store = os.path.join(base, "store")
    os.makedirs(os.path.join(store, "round-000001"))
    open(os.path.join(store, "round-000001", "SEALED"), "w").close()
    trace = os.path.join(base, "trace.txt")
    spawner = ("import subprocess, sys, time\n"
               f"ps = [subprocess.Popen([sys.executable, '-c', {IDLE_SCRIPT!r}, {store!r}, str(i)]) "
               f"for i in range({workers})]\n"
               "[p.wait() for p in ps]\n")
    proc = subprocess.Popen(["strace", "-f", "-ttt", "--seccomp-bpf",
                             "-e", "trace=%file,getdents64,utimensat",
                             "-o", trace, PY, "-c", spawner], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.time()
    log(f"idle: {workers} workers for {secs:.0f} s")
    time.sleep(secs)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    lo, hi = t0 + secs / 2, t0 + secs - 1
    listings = other = 0
    with open(trace) as fh:
        for line in fh:
            parts = line.split(None, 2)
            if len(parts) < 3 or not re.match(r"^[\d.]+$", parts[1]):
                continue
            if not lo <= float(parts[1]) <= hi or store not in parts[2]:
                continue
            if parts[2].startswith("openat(") and "O_DIRECTORY" in parts[2]:
                listings += 1
            elif not parts[2].startswith(("getdents64", "<...")):
                other += 1
    shutil.rmtree(base, ignore_errors=True)
    window = hi - lo
    return {"workers": workers, "window_s": window, "listings": listings,
            "per_s": listings / window, "other_calls": other}


# The largest N each system runs at (jug takes minutes beyond 10,000; the text variants
# are judged at 10,000).  Only fsmw and bare run at N=1,000,000 (runs_at in main).
MAX_N = {"jug": 10_000, "bare-fsync": 10_000, "fsmw-fsync": 100_000, "dirq": 100_000,
         "fsmw-text": 10_000, "dirq-text": 10_000}
DEFAULT_PLAN = "shm:1000,10000,100000 disk:1000,10000 gluster:1000"


def parse_plan(text: str) -> Dict[str, List[int]]:
    plan = {}
    for part in text.split():
        fs, _, ns = part.partition(":")
        plan[fs] = [int(x) for x in ns.split(",") if x]
    return plan


def main() -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--plan", default=DEFAULT_PLAN, help="file system:N,N... for each file system")
    ap.add_argument("--fs", default="shm,disk,gluster",
                    help="which file systems of the plan to run (gluster needs root and glusterfs; "
                         "it is skipped with a note if the lab cannot start)")
    ap.add_argument("--n", help="N list for every file system (overrides the plan)")
    ap.add_argument("--million", action="store_true", help="add N=1,000,000 on shm (fsmw, bare)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--million-reps", type=int, default=1, help="repetitions at N=1,000,000")
    ap.add_argument("--systems", default=",".join(SYSTEMS))
    ap.add_argument("--strace-n", type=int, default=10000, help="N of the strace runs (0: none)")
    ap.add_argument("--strace-fs", default="shm", help="file systems of the strace runs")
    ap.add_argument("--firstclaim-fs", default="shm", help="file systems of the first-claim runs")
    ap.add_argument("--no-firstclaim", action="store_true")
    ap.add_argument("--idle-workers", type=int, default=100, help="idle fsmw workers to count "
                    "listings of (0: skip)")
    ap.add_argument("--idle-secs", type=float, default=30.0)
    ap.add_argument("--executor-n", type=int, default=10_000, help="no-op calls of the fsmw.Executor "
                    "map against ProcessPoolExecutor (0: skip; repetitions: --reps)")
    ap.add_argument("--timeout", type=float, default=300, help="seconds per run (gluster: a fifth)")
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    a = ap.parse_args()
    plan = parse_plan(a.plan)
    fss = [fs for fs in a.fs.split(",") if fs]
    if a.n:
        plan = {fs: [int(x) for x in a.n.split(",")] for fs in fss}
    if a.million:
        plan.setdefault("shm", []).append(MILLION)
    systems = a.systems.split(",")
    for s in systems:
        if s not in SYSTEMS:
            ap.error(f"unknown system {s}")
    if a.strace_n and not shutil.which("strace"):
        ap.error("strace not found (apt-get install -y strace), or pass --strace-n 0")
    started = time.time()
    runs: List[dict] = []
    notes: List[str] = []

    def log(msg: str) -> None:
        print(f"[{time.time() - started:6.1f}s] {msg}", file=sys.stderr, flush=True)

    def do(system, fs, n, mode, rep=None, strace=None):
        r = run_one(system, fs, n, mode, a.timeout / 5 if fs == "gluster" else a.timeout, strace)
        r.update(system=system, fs=fs, n=n, mode="strace" if strace else mode, rep=rep)
        runs.append(r)
        shown = (f"wall={r['wall']:.3f}s first_claim={r.get('first_claim') or 0:.4f}s"
                 if r.get("ok") else r.get("error"))
        log(f"{fs} N={n} {r['mode']} {system} rep={rep}: {'ok' if r.get('ok') else 'FAILED'} {shown}")
        return r

    def runs_at(n: int, fs: str = "shm") -> List[str]:
        big = [s for s in systems if n <= MAX_N.get(s, MILLION) and (fs == "shm" or s != "jug" or n <= 1000)]
        return [s for s in big if n < MILLION or s in ("fsmw", "bare")]

    lab = None
    strace: Dict[str, dict] = {}
    try:
        if "gluster" in fss:
            lab = gluster_up(log)
            if lab is None:
                notes.append("gluster: skipped (needs root, glusterfs-server and -client; see "
                              "tools/lab/gluster.py)")
                fss.remove("gluster")
        for fs in fss:
            for n in plan.get(fs, []):
                chosen = runs_at(n, fs)
                reps = a.reps if n < MILLION else a.million_reps
                # Interleaved repetitions: each repetition runs every system once,
                # in an order rotated by one per repetition.
                for rep in range(reps):
                    k = rep % len(chosen)
                    for s in chosen[k:] + chosen[:k]:
                        do(s, fs, n, "throughput", rep)
                if not a.no_firstclaim and fs in a.firstclaim_fs.split(","):
                    for s in chosen:
                        do(s, fs, n, "firstclaim")
        if a.strace_n:
            tmpd = tempfile.mkdtemp(prefix="fsmw-bench-strace-")
            for fs in [f for f in a.strace_fs.split(",") if f in fss]:
                for s in runs_at(a.strace_n):
                    n = min(a.strace_n, 1000) if s == "jug" else a.strace_n  # jug: 80 s at 10,000
                    path = os.path.join(tmpd, f"{fs}-{s}.txt")
                    r = do(s, fs, n, "throughput", strace=path)
                    strace[f"{fs}/{s}"] = strace_summary(path, n, r)
            shutil.rmtree(tmpd, ignore_errors=True)
    finally:
        if lab is not None:
            lab.down()
        empty_trash()
    idle = idle_listings(a.idle_workers, a.idle_secs, log) if a.idle_workers else None
    executor = executor_bench.compare(a.executor_n, a.reps, log) if a.executor_n else None
    rows = summarize(runs, fss, plan, systems, strace, a.strace_fs.split(","))
    text = render(rows, a, idle, notes, targets(rows, runs, idle, strace), time.time() - started)
    text += executor_bench.section(executor) if executor else ""
    os.makedirs(a.out, exist_ok=True)
    stamp = datetime.datetime.utcnow().strftime("%Y%m%dT%H%M%SZ")
    with open(os.path.join(a.out, f"bench-{stamp}.md"), "w") as fh:
        fh.write(text)
    with open(os.path.join(a.out, f"bench-{stamp}.json"), "w") as fh:
        json.dump({"args": vars(a), "plan": plan, "filesystems": {k: FILESYSTEMS.get(k) for k in fss},
                   "versions": versions(), "metadata_calls": sorted(METADATA_CALLS),
                   "fsync_calls": sorted(FSYNC_CALLS), "summary": rows, "runs": runs,
                   "strace": strace, "idle": idle, "notes": notes, "executor": executor,
                   "elapsed_s": time.time() - started}, fh, indent=1)
    print(text)
    log(f"wrote {a.out}/bench-{stamp}.md and .json; {time.time() - started:.0f} s in total")
    # A failed reference run is shown as such in the table; a failed fsmw run
    # (a lost, duplicated or wrong result) fails the benchmark.
    return 0 if all(r.get("ok") for r in runs if r["system"].startswith("fsmw")) else 1


def strace_summary(path: str, n: int, r: dict) -> dict:
    calls = parse_strace(path) if os.path.exists(path) else {}
    total = sum(calls.values())
    meta = sum(v for k, v in calls.items() if k in METADATA_CALLS)
    fsync = sum(v for k, v in calls.items() if k in FSYNC_CALLS)
    return {"n": n, "ok": r.get("ok"), "calls": calls, "total_per_task": total / n,
            "metadata_per_task": meta / n, "fsync_per_task": fsync / n}


def summarize(runs, fss, plan, systems, strace, strace_fss) -> List[dict]:
    rows = []
    for fs in fss:
        for n in plan.get(fs, []):
            mine = [r for r in runs if r["fs"] == fs and r["n"] == n]
            base_med = None
            for s in systems:
                tp = [r for r in mine if r["system"] == s and r["mode"] == "throughput"]
                if not tp:
                    continue
                walls = [r["wall"] for r in tp if r.get("ok")]
                fc = [r["first_claim"] for r in mine if r["system"] == s and r["mode"] == "firstclaim"
                      and r.get("ok") and r.get("first_claim") is not None]
                rss = [r["master_rss_mb"] for r in tp if r.get("ok") and r.get("master_rss_mb")]
                wrss = [r["worker_rss_mb"] for r in tp if r.get("ok") and r.get("worker_rss_mb")]
                med = statistics.median(walls) if walls else None
                if s == BASELINE:
                    base_med = med
                st = strace.get(f"{strace_fss[0]}/{s}", {}) if strace_fss else {}
                rows.append({
                    "fs": fs, "n": n, "system": s, "runs": len(walls), "failed": len(tp) - len(walls),
                    "median_s": med, "min_s": min(walls) if walls else None,
                    "max_s": max(walls) if walls else None,
                    "tasks_per_s": n / med if med else None,
                    "first_claim_s": statistics.median(fc) if fc else None,
                    "master_rss_mb": max(rss) if rss else None,
                    "worker_rss_mb": max(wrss) if wrss else None,
                    "syscalls_per_task": st.get("total_per_task"),
                    "metadata_per_task": st.get("metadata_per_task"),
                    "fsync_per_task": st.get("fsync_per_task"),
                })
            for row in rows:
                if row["fs"] == fs and row["n"] == n:
                    row["ratio_to_bare"] = (row["median_s"] / base_med
                                            if base_med and row["median_s"] else None)
    return rows


def versions() -> Dict[str, Optional[str]]:
    found: Dict[str, Optional[str]] = {}
    for mod in ("fsmw", "dirq", "jug"):
        try:
            from importlib.metadata import version
            found[mod] = version(mod)
        except Exception:
            found[mod] = None
    return found


if __name__ == "__main__":
    sys.exit(main())
