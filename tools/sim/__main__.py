"""``python -m tools.sim``: run many schedules, or replay one seed with its trace.

    python -m tools.sim --schedules 10000 --procs 2        # CI: exit 1 on any failing seed
    python -m tools.sim --seed 12345 -v                    # replay one seed, print its trace
    python -m tools.sim --mutation no-fencing --schedules 2000 --first   # find a failing seed
    python -m tools.sim --find closed-round --schedules 10000 --procs 2  # the shortest seeds of a bug

fsmw iterates sets of task names, whose order depends on ``PYTHONHASHSEED``;
so that a seed replays byte for byte in any shell, this re-executes itself
with ``PYTHONHASHSEED=0`` unless that is already set.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import List, Optional

from .checks import PROPERTIES
from .runner import MUTATIONS, run_many, run_one


def _parse(argv: List[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tools.sim", description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, help="replay this one seed (with -v: print its trace)")
    parser.add_argument("--schedules", type=int, default=1000, help="how many seeds to run (default 1000)")
    parser.add_argument("--start", type=int, default=1, help="the first seed of a batch (default 1)")
    parser.add_argument("--procs", type=int, default=1, help="processes to run the batch in (default 1)")
    parser.add_argument("--mutation", choices=sorted(MUTATIONS), help="run with this break of fsmw")
    parser.add_argument("--first", action="store_true", help="stop at the first failing seed")
    parser.add_argument("--master-faults", action="store_true",
                        help="inject failed calls into masters too (they end the master on main)")
    parser.add_argument("--show", type=int, default=20, help="failing seeds to print (default 20)")
    parser.add_argument("--known", default="", help="comma-separated properties whose violations are "
                        "known bugs: reported, not failing (see tools/sim/checks.py PROPERTIES)")
    parser.add_argument("--find", metavar="PROPERTY", help="report the shortest seeds (fewest calls) that "
                        "break PROPERTY, every property counted as known meanwhile")
    parser.add_argument("-v", "--verbose", action="store_true", help="print the trace of --seed")
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    known = [k for k in args.known.split(",") if k]
    unknown = set(known) - set(PROPERTIES)
    if unknown:
        raise SystemExit(f"unknown properties {sorted(unknown)}; known: {', '.join(PROPERTIES)}")
    if args.seed is not None:
        outcome = run_one(args.seed, args.mutation, trace=args.verbose, master_faults=args.master_faults,
                          known=known)
        if args.verbose:
            sys.stdout.write(outcome.trace)
        print(f"seed {outcome.seed}: {'ok' if outcome.ok else 'FAILED'}: {outcome.why} "
              f"({outcome.points} calls, {outcome.virtual_secs:.1f} s virtual)")
        return 0 if outcome.ok else 1
    if args.find:
        return _find(args)
    started = time.perf_counter()
    found = run_many(args.start, args.schedules, args.mutation, args.procs, args.first, args.master_faults,
                     known)
    extra = (f" --mutation {args.mutation}" if args.mutation else "") + \
        (" --master-faults" if args.master_faults else "")
    for outcome in found["failures"][:args.show]:
        print(f"seed {outcome.seed}: FAILED: {outcome.why}")
        print(f"  replay: python -m tools.sim --seed {outcome.seed}{extra} -v")
    hits = f" (and {len(found['known'])} hitting known bugs: {args.known})" if known else ""
    what = f" with mutation {args.mutation}" if args.mutation else ""
    print(f"sim: {found['schedules']} schedules from seed {args.start}{what}, "
          f"{len(found['failures'])} failing{hits}, {time.perf_counter() - started:.1f} s "
          f"({found['rate']:.0f} schedules/s, {args.procs} processes)")
    return 1 if found["failures"] else 0


def _find(args: argparse.Namespace) -> int:
    """Print the shortest seeds that break ``args.find`` (a minimal replay of a known bug)."""
    known = [p for p in PROPERTIES if p != "escaped"]
    found = run_many(args.start, args.schedules, args.mutation, args.procs, False, args.master_faults, known)
    hits = sorted((o.points, o.seed, h) for o in found["known"] for h in o.known
                  if h.startswith(f"[{args.find}]"))
    for points, seed, hit in hits[:args.show]:
        print(f"seed {seed} ({points} calls): {hit}")
    print(f"sim: {len(hits)} hits of {args.find} in {args.schedules} schedules from seed {args.start}")
    return 0


if __name__ == "__main__":
    if os.environ.get("PYTHONHASHSEED") != "0":
        os.environ["PYTHONHASHSEED"] = "0"
        os.execv(sys.executable, [sys.executable, "-m", "tools.sim"] + sys.argv[1:])
    sys.exit(main())
