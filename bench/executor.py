"""fsmw.Executor against concurrent.futures.ProcessPoolExecutor: ``map`` of no-op calls.

Each measurement runs in a process of its own (``python -m bench.executor
--system fsmw|pool --n N --dir DIR``), with 2 worker processes on this
machine: the Executor's ``local_workers=2`` (``fsmw worker`` processes on a
store under DIR), or a ProcessPoolExecutor(2).  ``map_s`` runs from making
the executor to the last result (worker start-up included for both);
``total_s`` adds ``shutdown`` (for fsmw: STOP, and the workers' exit).
Repetitions are interleaved, in an order rotated by one each time.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Callable, Dict, List

HERE = os.path.dirname(os.path.abspath(__file__))


def noop(x: int) -> int:
    return x


def measure(system: str, n: int, directory: str) -> Dict[str, float]:
    from bench.executor import noop as call  # by its module's name, not __main__'s
    t0 = time.perf_counter()
    if system == "fsmw":
        import fsmw
        ex: concurrent.futures.Executor = fsmw.Executor(os.path.join(directory, "store"), local_workers=2)
    else:
        ex = concurrent.futures.ProcessPoolExecutor(2)
    got = list(ex.map(call, range(n)))
    t1 = time.perf_counter()
    ex.shutdown()
    t2 = time.perf_counter()
    assert got == list(range(n)), "lost, duplicated or wrong results"
    return {"map_s": t1 - t0, "total_s": t2 - t0}


def compare(n: int, reps: int, log: Callable[[str], None], base: str = "/dev/shm") -> dict:
    """Interleaved repetitions of both; medians, per-repetition ratios, time per call."""
    runs: Dict[str, List[Dict[str, float]]] = {"fsmw": [], "pool": []}
    order = ["fsmw", "pool"]
    for rep in range(reps):
        for system in order[rep % 2:] + order[:rep % 2]:
            with tempfile.TemporaryDirectory(prefix="fsmw-bench-ex-", dir=base) as d:
                out = subprocess.run([sys.executable, "-m", "bench.executor", "--system", system,
                                      "--n", str(n), "--dir", d], cwd=os.path.dirname(HERE),
                                     capture_output=True, text=True, timeout=600)
            if out.returncode != 0:
                log(f"executor {system} rep={rep}: FAILED {out.stderr.strip()[-300:]}")
                continue
            r = dict(json.loads(out.stdout), rep=rep)
            runs[system].append(r)
            log(f"executor N={n} {system} rep={rep}: map={r['map_s']:.3f}s total={r['total_s']:.3f}s")
    result: dict = {"n": n, "runs": runs}
    for system, rs in runs.items():
        for key in ("map_s", "total_s"):
            result[f"{system}_{key}"] = statistics.median(r[key] for r in rs) if rs else None
    pool = {r["rep"]: r["map_s"] for r in runs["pool"]}
    # per repetition, >1: fsmw faster
    result["ratios"] = [pool[f["rep"]] / f["map_s"] for f in runs["fsmw"] if f["rep"] in pool]
    return result


def section(r: dict) -> str:
    """The markdown the bench report gets."""
    f, p = r.get("fsmw_map_s"), r.get("pool_map_s")
    if not (f and p):
        return "\nExecutor: not measured in this run (or it failed).\n"
    n = r["n"]
    spread = ", ".join(f"{x:.2f}" for x in r["ratios"])
    return (f"\nExecutor `map` of {n:,} no-op calls, 2 worker processes on this machine (bench/executor.py), "
            f"medians of {len(r['runs']['fsmw'])}:\n\n"
            f"| system | map s | per call µs | with shutdown s |\n|---|---:|---:|---:|\n"
            f"| fsmw.Executor (local_workers=2, store on /dev/shm) | {f:.3f} | {f / n * 1e6:.0f} | "
            f"{r['fsmw_total_s']:.3f} |\n"
            f"| concurrent.futures.ProcessPoolExecutor(2) | {p:.3f} | {p / n * 1e6:.0f} | "
            f"{r['pool_total_s']:.3f} |\n\n"
            f"fsmw.Executor runs at {p / f:.2f}x ProcessPoolExecutor's speed (map time; per repetition: "
            f"{spread}).\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--system", choices=["fsmw", "pool"], required=True)
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--dir", required=True)
    a = ap.parse_args()
    print(json.dumps(measure(a.system, a.n, a.dir)))


if __name__ == "__main__":
    main()
