"""``fsmw doctor``'s probes that take several processes at once.

* Races: ``RACERS`` processes create (O_EXCL) and link the same
  ``RACE_NAMES`` names at the same moment; every name must have exactly one
  winner, or claims and no-clobber publishing are not safe here.
* Visibility: another process polls for a new name in a listing and a new
  mtime in ``stat``; how many milliseconds after the call it sees them.

Property: every child is started through ``_Children``, which never leaves a
process behind, and every wait is bounded by ``WAIT_SECS``.
"""

from __future__ import annotations

import functools
import os
import statistics
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from .common import WAIT_SECS, Result, _Children, _create, _mp, _ok

RACERS, RACE_NAMES, TRIALS = 8, 50, 20


def probe_races(work: Path) -> Dict[str, Result]:
    """RACERS processes create and link the same RACE_NAMES names at once."""
    barrier, queue = _mp.Barrier(RACERS), _mp.Queue()
    with _Children() as kids:
        for i in range(RACERS):
            kids.start(_racer, str(work), i, barrier, queue)
        results = [queue.get(timeout=30) for _ in range(RACERS)]
    errors = [r for r in results if isinstance(r, str)]
    wins = Counter(w for r in results if not isinstance(r, str) for w in r)
    out = {}
    for kind in ("excl", "link"):
        bad = [i for i in range(RACE_NAMES) if wins[(kind, i)] != 1]
        what = f"{RACERS} processes x {RACE_NAMES} names"
        if errors:
            out[f"{kind}_race"] = _ok(False, f"{what}: {errors[0]}")
        elif bad:
            counts = ", ".join(f"{wins[(kind, i)]}" for i in bad[:5])
            out[f"{kind}_race"] = _ok(False, f"{what}: {len(bad)} names had {counts} ... winners")
        else:
            out[f"{kind}_race"] = _ok(True, f"{what}: exactly one winner each")
    return out


def _racer(work: str, index: int, barrier: Any, queue: Any) -> None:
    won: List[Any] = []
    try:
        barrier.wait(20)
        for i in range(RACE_NAMES):
            try:
                _create(Path(work, f"race.excl.{i}"))
                won.append(("excl", i))
            except FileExistsError:
                pass
            tmp = Path(work, f"race.tmp.{index}.{i}")
            _create(tmp)
            try:
                os.link(tmp, Path(work, f"race.link.{i}"))
                won.append(("link", i))
            except FileExistsError:
                pass
            os.unlink(tmp)
    except Exception as exc:  # report any failure (sshfs: EPERM for a lost race)
        queue.put(f"racer {index}: {exc!r}")
        return
    queue.put(won)


def _watch(conn: Any) -> None:
    """Child: for each (kind, path, wanted) job, say "ready", poll, send when it was seen."""
    for kind, path, wanted in iter(conn.recv, None):
        conn.send("ready")
        seen, deadline = None, time.monotonic() + WAIT_SECS
        while seen is None and time.monotonic() < deadline:
            try:
                hit = wanted in os.listdir(path) if kind == "list" else os.stat(path).st_mtime_ns == wanted
            except FileNotFoundError:
                hit = False
            seen = time.monotonic() if hit else None
        conn.send(seen)


def probe_visibility(work: Path) -> Dict[str, Result]:
    """How soon another process lists a new name / stats a new mtime (ms after the call)."""
    target = work / "utime"
    _create(target)
    delays: Dict[str, List[Optional[float]]] = {"new_file": [], "utime": []}
    mine, theirs = _mp.Pipe()
    with _Children() as kids:
        kids.start(_watch, theirs)
        for i in range(TRIALS):
            stamp = (1_000_000_000 + i) * 10**9  # whole seconds: seen at any resolution
            delays["new_file"].append(_trial(mine, ("list", str(work), f"visible.{i}"),
                                             functools.partial(_create, work / f"visible.{i}")))
            delays["utime"].append(_trial(mine, ("stat", str(target), stamp),
                                          functools.partial(os.utime, target, ns=(stamp, stamp))))
        mine.send(None)
    return {key: _delay_summary(values) for key, values in delays.items()}


def _trial(conn: Any, job: tuple, act: Callable[[], object]) -> Optional[float]:
    """Have the watcher poll for ``job``, then ``act``; ms from the end of ``act`` until seen."""
    conn.send(job)
    if not conn.poll(WAIT_SECS) or conn.recv() != "ready":
        raise TimeoutError("the watching process did not answer")
    act()
    done = time.monotonic()
    if not conn.poll(WAIT_SECS * 2):
        raise TimeoutError("the watching process did not answer")
    seen = conn.recv()
    return None if seen is None else max(0.0, seen - done) * 1000


def _delay_summary(values: List[Optional[float]]) -> Result:
    seen = [v for v in values if v is not None]
    missed = len(values) - len(seen)
    median, worst = (statistics.median(seen), max(seen)) if seen else (None, None)
    worst = WAIT_SECS * 1000 if missed else worst
    text = f"median {median:.2f} ms, max {worst:.2f} ms" if median is not None else "never"
    text += f" ({len(values)} trials, another process on this host" + \
        (f"; {missed} not seen within {WAIT_SECS:.0f} s)" if missed else ")")
    return dict(median_ms=median, max_ms=worst, trials=len(values), missed=missed, summary=text)
