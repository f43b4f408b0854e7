"""Running schedules: one with its trace, or many (in worker processes) with a verdict each.

Property: :func:`run_one` gives the same :class:`Outcome` (trace included,
byte for byte) for the same seed and mutation in any process started with
the same ``PYTHONHASHSEED`` (the CLI fixes it to 0).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import time
from typing import Any, Dict, Iterator, List, NamedTuple, Optional, Sequence

from .mutations import MUTATIONS, mutated
from .world import World


class Outcome(NamedTuple):
    seed: int
    ok: bool
    why: str  # "done", or the first violation
    points: int
    virtual_secs: float
    trace: str  # "" unless asked for
    known: tuple = ()  # known bugs hit (properties passed as known)


def format_trace(world: World) -> str:
    lines = [f"seed {world.seed}: shape {world.shape}, behaviour {world.behaviour}",
             f"faults {world.plan.as_dict()}",
             "nodes " + ", ".join(f"{n.name}(actimeo {n.actimeo}, acdir {n.acdir}, "
                                  f"wall {n.wall_offset:+.1f} s)" for n in world.nodes)]
    for event in world.kernel.trace:
        lines.append(f"{event[0]:10.3f} " + " ".join(str(e) for e in event[1:] if e != ""))
    lines.append(f"end: {world.kernel.over}; faults drawn {world.faults.counts}; checks {world.check.stats}")
    return "\n".join(lines) + "\n"


def run_one(seed: int, mutation: Optional[str] = None, trace: bool = False,
            master_faults: bool = False, known: Sequence[str] = ()) -> Outcome:
    with mutated(mutation):
        world = World(seed, tracing=trace, master_faults=master_faults, known=known)
        world.run()
    violations = world.check.violations
    why = violations[0] if violations else (world.kernel.over or "?")
    return Outcome(seed, not violations, why, world.kernel.points, round(world.kernel.now, 3),
                   format_trace(world) if trace else "", tuple(world.check.known_hits))


def _run_range(args: Sequence[Any]) -> List[Outcome]:
    seeds, mutation, stop_at_first, master_faults, known = args
    found = []
    for seed in seeds:
        outcome = run_one(seed, mutation, master_faults=master_faults, known=known)
        if not outcome.ok or outcome.known:
            found.append(outcome)
            if stop_at_first and not outcome.ok:
                break
    return found


def run_many(first: int, count: int, mutation: Optional[str] = None, procs: int = 1,
             stop_at_first: bool = False, master_faults: bool = False,
             known: Sequence[str] = ()) -> Dict[str, Any]:
    """Run seeds ``first .. first+count-1``; the failures, the known-bug hits, the count, the rate."""
    started = time.perf_counter()
    seeds = list(range(first, first + count))
    if procs <= 1:
        failures = _run_range((seeds, mutation, stop_at_first, master_faults, tuple(known)))
    else:
        chunks = [(seeds[i::procs], mutation, stop_at_first, master_faults, tuple(known))
                  for i in range(procs)]
        with _pool(procs) as pool:
            failures = [o for part in pool.map(_run_range, chunks) for o in part]
    failures.sort(key=lambda o: o.seed)
    known_hits = [o for o in failures if o.ok]
    failures = [o for o in failures if not o.ok]
    secs = time.perf_counter() - started
    return dict(schedules=count, failures=failures, known=known_hits, secs=secs,
                rate=count / secs if secs else 0.0)


@contextlib.contextmanager
def _pool(procs: int) -> Iterator[Any]:
    pool = multiprocessing.get_context("fork").Pool(procs)
    try:
        yield pool
    finally:
        pool.close()
        pool.join()


__all__ = ["MUTATIONS", "Outcome", "run_many", "run_one"]
