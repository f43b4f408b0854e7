#!/usr/bin/env python3
"""Side-by-side benchmark of fsmw and reference systems (see bench/README.md).

Usage: bench/.venv/bin/python bench/run.py [--n 1000,10000] [--reps 3]
           [--fs shm,disk] [--systems ...] [--strace-n 1000] [--out bench/results]

Writes <out>/bench-<UTC time>.md and .json (and prints the Markdown table).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
PY = sys.executable

# name -> (script, extra args); the first entry is the baseline for ratios.
SYSTEMS: Dict[str, List[str]] = {
    "bare": ["bare.py", "--fsync", "0"],
    "bare-fsync": ["bare.py", "--fsync", "1"],
    "fsmw": ["fsmw_sys.py", "--fsync", "-1"],  # defaults: fsync only on shared file systems
    "fsmw-fsync": ["fsmw_sys.py", "--fsync", "1"],  # fsync forced on, as on a shared one
    "dirq": ["dirq_sys.py"],
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


def run_one(system: str, fs: str, n: int, mode: str, timeout: float,
            strace_file: Optional[str] = None) -> dict:
    base = tempfile.mkdtemp(prefix=f"fsmw-bench-{system}-", dir=FILESYSTEMS[fs])
    script, *extra = SYSTEMS[system]
    argv = [PY, os.path.join(HERE, "systems", script), "master", base, str(n), "--mode", mode, *extra]
    if strace_file:
        argv = ["strace", "-f", "-c", "-o", strace_file, *argv]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)  # the master and its workers
        proc.communicate()
        shutil.rmtree(base, ignore_errors=True)
        raise
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # stragglers, if any
        except ProcessLookupError:
            pass
    shutil.rmtree(base, ignore_errors=True)
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", default="1000,10000")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--fs", default="shm,disk")
    ap.add_argument("--systems", default=",".join(SYSTEMS))
    ap.add_argument("--strace-n", type=int, default=1000, help="N of the strace runs (0: no strace)")
    ap.add_argument("--no-firstclaim", action="store_true")
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    a = ap.parse_args()
    ns = [int(x) for x in a.n.split(",")]
    fss = a.fs.split(",")
    systems = a.systems.split(",")
    for s in systems:
        if s not in SYSTEMS:
            ap.error(f"unknown system {s}")
    if a.strace_n and not shutil.which("strace"):
        ap.error("strace not found (apt-get install -y strace), or pass --strace-n 0")
    started = time.time()
    runs: List[dict] = []

    def log(msg: str) -> None:
        print(f"[{time.time() - started:6.1f}s] {msg}", file=sys.stderr, flush=True)

    def do(system, fs, n, mode, rep=None, strace=None):
        r = run_one(system, fs, n, mode, a.timeout, strace)
        r.update(system=system, fs=fs, n=n, mode="strace" if strace else mode, rep=rep)
        runs.append(r)
        shown = (f"wall={r['wall']:.3f}s first_claim={r.get('first_claim') or 0:.4f}s"
                 if r.get("ok") else r.get("error"))
        log(f"{fs} N={n} {r['mode']} {system} rep={rep}: {'ok' if r.get('ok') else 'FAILED'} {shown}")
        return r

    # Interleaved repetitions: each repetition runs every system once, in an
    # order rotated by one per repetition.
    for fs in fss:
        for n in ns:
            for rep in range(a.reps):
                k = rep % len(systems)
                for s in systems[k:] + systems[:k]:
                    do(s, fs, n, "throughput", rep)
            if not a.no_firstclaim:
                for s in systems:
                    do(s, fs, n, "firstclaim")
    # strace on separate runs
    strace: Dict[str, dict] = {}
    if a.strace_n:
        tmpd = tempfile.mkdtemp(prefix="fsmw-bench-strace-")
        for fs in fss:
            for s in systems:
                path = os.path.join(tmpd, f"{fs}-{s}.txt")
                r = do(s, fs, a.strace_n, "throughput", strace=path)
                calls = parse_strace(path) if os.path.exists(path) else {}
                total = sum(calls.values())
                meta = sum(v for k, v in calls.items() if k in METADATA_CALLS)
                fsync = sum(v for k, v in calls.items() if k in FSYNC_CALLS)
                strace[f"{fs}/{s}"] = {"n": a.strace_n, "ok": r.get("ok"), "calls": calls,
                                       "total_per_task": total / a.strace_n,
                                       "metadata_per_task": meta / a.strace_n,
                                       "fsync_per_task": fsync / a.strace_n}
        shutil.rmtree(tmpd, ignore_errors=True)

    # Summaries
    rows = []
    for fs in fss:
        for n in ns:
            base_med = None
            for s in systems:
                walls = [r["wall"] for r in runs if r["system"] == s and r["fs"] == fs and r["n"] == n
                         and r["mode"] == "throughput" and r.get("ok")]
                nfail = sum(1 for r in runs if r["system"] == s and r["fs"] == fs and r["n"] == n
                            and r["mode"] == "throughput" and not r.get("ok"))
                fc = [r["first_claim"] for r in runs if r["system"] == s and r["fs"] == fs and r["n"] == n
                      and r["mode"] == "firstclaim" and r.get("ok") and r.get("first_claim") is not None]
                med = statistics.median(walls) if walls else None
                if s == BASELINE:
                    base_med = med
                st = strace.get(f"{fs}/{s}", {})
                rows.append({
                    "fs": fs, "n": n, "system": s, "runs": len(walls), "failed": nfail,
                    "median_s": med, "min_s": min(walls) if walls else None,
                    "max_s": max(walls) if walls else None,
                    "tasks_per_s": n / med if med else None,
                    "first_claim_s": statistics.median(fc) if fc else None,
                    "syscalls_per_task": st.get("total_per_task"),
                    "metadata_per_task": st.get("metadata_per_task"),
                    "fsync_per_task": st.get("fsync_per_task"),
                })
            for row in rows:
                if row["fs"] == fs and row["n"] == n:
                    row["ratio_to_bare"] = (row["median_s"] / base_med
                                            if base_med and row["median_s"] else None)

    def f(x, fmt):
        return "–" if x is None else format(x, fmt)

    md = [f"Side-by-side benchmark, {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC, "
          f"{platform.node()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
          f"{a.reps} interleaved repetitions; 2 workers; strace at N={a.strace_n}.",
          "",
          "| fs | N | system | median s (min–max) | tasks/s | × bare | syscalls/task "
          "| metadata/task | fsync/task | first claim ms | ok runs |",
          "|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        md.append(f"| {r['fs']} | {r['n']} | {r['system']} | {f(r['median_s'], '.3f')} "
                  f"({f(r['min_s'], '.3f')}–{f(r['max_s'], '.3f')}) | {f(r['tasks_per_s'], '.0f')} | "
                  f"{f(r['ratio_to_bare'], '.1f')} | {f(r['syscalls_per_task'], '.1f')} | "
                  f"{f(r['metadata_per_task'], '.1f')} | {f(r['fsync_per_task'], '.2f')} | "
                  f"{f(None if r['first_claim_s'] is None else r['first_claim_s'] * 1000, '.1f')} | "
                  f"{r['runs']}/{r['runs'] + r['failed']} |")
    text = "\n".join(md) + "\n"
    os.makedirs(a.out, exist_ok=True)
    stamp = datetime.datetime.utcnow().strftime("%Y%m%dT%H%M%SZ")
    with open(os.path.join(a.out, f"bench-{stamp}.md"), "w") as fh:
        fh.write(text)
    versions = {}
    for mod in ("fsmw", "dirq", "jug"):
        try:
            from importlib.metadata import version
            versions[mod] = version(mod)
        except Exception:
            versions[mod] = None
    with open(os.path.join(a.out, f"bench-{stamp}.json"), "w") as fh:
        json.dump({"args": vars(a), "filesystems": {k: FILESYSTEMS[k] for k in fss},
                   "versions": versions, "metadata_calls": sorted(METADATA_CALLS),
                   "fsync_calls": sorted(FSYNC_CALLS), "summary": rows, "runs": runs,
                   "strace": strace, "elapsed_s": time.time() - started}, fh, indent=1)
    print(text)
    log(f"wrote {a.out}/bench-{stamp}.md and .json")
    return 0 if all(r.get("ok") for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
