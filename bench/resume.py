"""How long a restarted master takes to resume its open round, against a fresh start.

Times a master of N tasks from ``run()`` until its first pause (it waits for
workers, none are running): a fresh start (writes N inputs and ``SEALED``),
a restart of the sealed round (hashes what ``create_input_files()`` yields
and compares it with ``SEALED``'s digest), and a restart of a round without
``SEALED`` (as if the master died while writing inputs: one read per input).

    python -m bench.resume DIR [N] [--reps 3]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import time
from pathlib import Path
from typing import Dict, List

import fsmw


class Waiting(Exception):
    """The master paused for the first time: it is waiting for workers."""


def _stop_at_first_pause(secs: float, wake: object = None) -> None:
    raise Waiting()


def _master_class(n: int) -> type:
    class Tasks(fsmw.Master):
        def create_input_files(self) -> None:
            for i in range(n):
                self.create_input_file(f"t{i:07d}", f"{i} {i * i}\n")
    return Tasks


def until_waiting(store: Path, n: int) -> float:
    started = time.perf_counter()
    master = _master_class(n)(store, progress=False, fsync=False,
                              clock=fsmw.Clock(sleep=_stop_at_first_pause))
    try:
        master.run()
    except Waiting:
        pass
    return time.perf_counter() - started


def main() -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.resume", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir", type=Path, help="where to make the stores (removed after)")
    ap.add_argument("n", type=int, nargs="?", default=100_000)
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    rows: Dict[str, List[float]] = {"fresh": [], "resume, sealed (digest)": [],
                                    "resume, unsealed (reads every input)": []}
    for rep in range(a.reps):
        store = a.dir / f"resume-bench-{rep}"
        shutil.rmtree(store, ignore_errors=True)
        try:
            rows["fresh"].append(until_waiting(store, a.n))
            rows["resume, sealed (digest)"].append(until_waiting(store, a.n))
            (store / "round-000001" / "SEALED").unlink()
            rows["resume, unsealed (reads every input)"].append(until_waiting(store, a.n))
        finally:
            shutil.rmtree(store, ignore_errors=True)
    for name, secs in rows.items():
        print(f"N={a.n} {name:38s} median {statistics.median(secs):7.2f} s  "
              f"(runs: {', '.join(f'{x:.2f}' for x in secs)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
