#!/usr/bin/env python3
"""Example of fsmw.Executor: factorize integers with calls instead of subclasses.

Usage: examples/executor.py STORE [N_LOCAL_WORKERS]
It starts N_LOCAL_WORKERS (default 2) `fsmw worker` processes on this
machine; workers started elsewhere (examples/fsmw_worker_slurm.sh,
examples/fsmw_worker.sub) on the same STORE join in.  `factorize` lives in
examples/factorize.py, which the workers import by name: this script's
directory is on their PYTHONPATH (local workers get this sys.path).
"""

from __future__ import annotations

import sys

import fsmw
from factorize import factorize


def main(argv) -> int:
    if len(argv) < 2:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    numbers = [2 ** 31 - 1 + 2 * i for i in range(20)]
    with fsmw.Executor(argv[1], local_workers=int(argv[2]) if len(argv) > 2 else 2) as ex:
        results = list(ex.map(factorize, numbers))
        for i, factors in enumerate(results):
            print(f"{numbers[i]} = {' x '.join(map(str, factors))}")
        try:
            ex.submit(factorize, 1).result()
        except ValueError as exc:  # raised on a worker, raised here again
            print(f"factorize(1) raised {type(exc).__name__}: {exc}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
