"""``fsmw report``: one self-contained HTML page (inline CSS and SVG) of what a run did.

A table gives, per round and for the run: tasks, done, failed, pending, running
(claims in the listing), duplicates discarded, attempts journaled (failed ones,
backups, takeovers), wall span (first claim to last end) and throughput.  A
timeline has one row per worker process (``host/worker_id/pid``) and one bar per
attempt, ``claimed`` to ``ended``, coloured by outcome; backups are hatched,
takeovers of stale claims outlined, each bar has a ``<title>`` tooltip.  A cross
marks where a lost attempt's claim was broken; claims still held are drawn up
to their last heartbeat.

It reads only the store: one listing per round (:class:`RoundView`), the
journals ``round-k/.journal.*`` (see ``_core.journal``), running claims and the
records of broken ones.  Damaged lines, foreign and vanished files are
skipped.  Times are the workers' own clocks.  The page itself is drawn by
``report_html`` (above ``MAX_DETAILED`` bars, close bars are merged).
"""

from __future__ import annotations

import argparse
import dataclasses
from datetime import datetime
from pathlib import Path
from typing import Dict, List, Optional, Set, Tuple

from .._core import layout as names
from .._core.atomic import write_replace
from .._core.errors import FsmwError, StoreError
from .._core.journal import read_journals
from .._core.records import parse_record
from .._core.store import Store
from .._core.view import RoundView
from .roundfiles import RoundFiles
from .report_html import JOURNALED, Bar, RoundData, Row, render

KINDS = ("claim", "break", "backup")
MAX_LOST_READS = 2_000  # error records read to place lost attempts
SANE_TIMES = (946684800.0, 4102444800.0)  # 2000 to 2100: anything else is garbage


def report_command(args: argparse.Namespace) -> int:
    """Write the report of store ``args.store`` to ``args.html``; return 0.

    Raises:
        StoreError: the store, or the round asked for, does not exist.
        FsmwError: the page cannot be written.
    """
    store = Store(args.store)
    store.check(writable=False)
    numbers = store.rounds()
    if args.round is not None:
        if args.round not in numbers:
            raise StoreError(f"store {store.root} has no round {args.round} "
                             f"(rounds: {', '.join(map(str, numbers)) or 'none'})")
        numbers = [args.round]
    page = render(str(store.root), [read_round(store, n) for n in numbers])
    try:
        write_replace(Path(args.html), page.encode("utf-8"), fsync=False)
    except OSError as exc:
        raise FsmwError(f"cannot write the report to {args.html}: {exc.strerror or exc}") from exc
    return 0


def read_round(store: Store, number: int) -> RoundData:
    """The listing, journaled attempts, running claims and lost attempts of one round."""
    round_dir = RoundFiles(store.round(number))
    try:
        entries = round_dir.listing()
        view = round_dir.scan(entries)
    except StoreError as exc:
        return RoundData(number, RoundView(), [], note=str(exc))
    bars: List[Bar] = []
    for name in filter(names.is_journal, entries):
        try:  # one journal at a time: a damaged file costs no other worker's lines
            lines = read_journals(round_dir.round, [name])
            bars += filter(None, (_bar(line, number) for line in lines))
        except RecursionError:  # json.loads of a deeply nested garbage line
            continue
    seen = {(b.task, b.attempt) for b in bars}
    bars += _running(round_dir, number, view, seen) + _lost(round_dir, bars)
    return RoundData(number, view, bars)


def _bar(line: object, number: int) -> Optional[Bar]:
    if not isinstance(line, dict) or line.get("outcome") not in JOURNALED:
        return None
    try:
        start, end, attempt = float(line["claimed"]), float(line["ended"]), int(line["attempt"])
    except (KeyError, TypeError, ValueError, OverflowError):
        return None
    if not (_sane(start) and _sane(end)):
        return None
    kind = str(line.get("kind")) if line.get("kind") in KINDS else "claim"
    row = (str(line.get("host")), str(line.get("worker_id")), str(line.get("pid")))
    return Bar(row, str(line.get("task")), number, attempt, kind, line["outcome"], start,
               max(start, end))


def _sane(when: float) -> bool:
    return SANE_TIMES[0] < when < SANE_TIMES[1]


def _record(round_dir: RoundFiles, name: str) -> Tuple[Dict[str, str], float, Optional[float]]:
    """A record's facts, mtime and ``started`` time; ({}, 0, None) if unreadable."""
    try:
        mtime = round_dir.fs.stat(round_dir.join(name)).st_mtime
        data = round_dir.read(name)
    except OSError:
        return {}, 0.0, None
    if data is None:
        return {}, 0.0, None
    facts = parse_record(data)
    try:
        started: Optional[float] = datetime.fromisoformat(facts["started"]).timestamp()
    except (KeyError, ValueError, OverflowError, OSError):
        started = None
    return facts, mtime, started if started is not None and _sane(started) else None


def _owner(facts: Dict[str, str]) -> Row:
    return (facts.get("host", "?"), facts.get("worker_id", "?"), facts.get("pid", "?"))


def _running(round_dir: RoundFiles, number: int, view: RoundView, seen: Set[Tuple[str, int]]) -> List[Bar]:
    """Claims of unfinished tasks with no journal line yet, up to their last heartbeat."""
    bars = []
    for task, gen in view.running().items():
        if (task, gen) in seen:
            continue
        facts, heartbeat, started = _record(round_dir, names.file_name(task, names.CLAIM, gen))
        if started is not None:
            bars.append(Bar(_owner(facts), task, number, gen, "claim", "running", started,
                            max(started, heartbeat)))
    return bars


def _lost(round_dir: RoundFiles, bars: List[Bar]) -> List[Bar]:
    """The attempts whose claims takeovers broke, on their dead holders' rows."""
    lost = []
    for bar in [b for b in bars if b.kind == "break"][:MAX_LOST_READS]:
        facts, _, started = _record(round_dir, names.file_name(bar.task, names.ERR, bar.attempt - 1))
        if facts.get("error", "").startswith("lease expired"):
            start = bar.start if started is None else min(started, bar.start)
            lost.append(dataclasses.replace(bar, row=_owner(facts), attempt=bar.attempt - 1,
                                            outcome="lost", kind="claim", start=start, end=bar.start))
    return lost
