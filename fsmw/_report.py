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
journals ``round-k/.journal.*`` (see ``_journal``), running claims and the
records of broken ones.  Damaged lines, foreign and vanished files are
skipped.  Times are the workers' own clocks.  Above ``MAX_DETAILED`` bars, bars
of a row and outcome less than a pixel apart are merged: the page stays a few MB.
"""

from __future__ import annotations

import argparse
import dataclasses
import html
import math
import os
import socket
import time
from datetime import datetime
from pathlib import Path
from typing import Dict, List, Optional, Set, Tuple

from . import _names as names
from ._atomic import write_replace
from ._errors import FsmwError, StoreError
from ._inspect import check_store
from ._journal import is_journal, read_journals
from ._owner import parse_record
from ._store import RoundView, Store, scan_names

# Outcome -> colour, in drawing order (rare outcomes last, so they stay on top).
COLOURS = {"published": "#2ca02c", "running": "#1f77b4", "duplicate": "#ff8c00",
           "interrupted": "#999999", "failed": "#d62728", "lost": "#000000"}
JOURNALED = ("published", "duplicate", "failed", "interrupted")
KINDS = ("claim", "break", "backup")
MAX_DETAILED = 20_000  # bars drawn one by one, each with its own tooltip
MAX_LOST_READS = 2_000  # error records read to place lost attempts
SANE_TIMES = (946684800.0, 4102444800.0)  # 2000 to 2100: anything else is garbage
LABEL_W, PLOT_W, ROW_H, TOP, BOTTOM = 230, 1100, 18, 52, 34
CSS = ("body{font:14px system-ui,sans-serif;margin:16px;color:#222}table{border-collapse:collapse}"
       "td,th{padding:2px 8px;border-bottom:1px solid #ddd;text-align:right}"
       "td:nth-child(-n+2),th:nth-child(-n+2){text-align:left}tr.all td{font-weight:bold}"
       ".note{color:#666}svg text{font:11px system-ui,sans-serif;fill:#333}"
       + "".join(f".{k}{{fill:{v}}}" for k, v in COLOURS.items())
       + ".break{stroke:#000;stroke-width:1.5}.lost{stroke:#000;stroke-width:2}")
Row = Tuple[str, str, str]  # host, worker_id, pid


@dataclasses.dataclass
class Bar:
    row: Row
    task: str
    round: int
    attempt: int
    kind: str
    outcome: str
    start: float
    end: float
    count: int = 1


@dataclasses.dataclass
class RoundData:
    number: int
    view: RoundView
    bars: List[Bar]
    note: str = ""


def report_command(args: argparse.Namespace) -> int:
    """Write the report of store ``args.store`` to ``args.html``; return 0.

    Raises:
        StoreError: the store, or the round asked for, does not exist.
        FsmwError: the page cannot be written.
    """
    store = Store(args.store)
    check_store(store)
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
    round_dir = store.round_dir(number)
    try:
        entries = store.listing(number)
    except StoreError as exc:
        return RoundData(number, RoundView(), [], note=str(exc))
    view = scan_names(entries)
    bars: List[Bar] = []
    for name in filter(is_journal, entries):
        try:  # one journal at a time: a damaged file costs no other worker's lines
            bars += filter(None, (_bar(line, number) for line in read_journals(round_dir, [name])))
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


def _record(path: Path) -> Tuple[Dict[str, str], float, Optional[float]]:
    """A record's facts, mtime and ``started`` time; ({}, 0, None) if unreadable."""
    try:
        with open(path, "rb") as f:
            facts, mtime = parse_record(f.read(65536)), os.fstat(f.fileno()).st_mtime
    except OSError:
        return {}, 0.0, None
    try:
        started: Optional[float] = datetime.fromisoformat(facts["started"]).timestamp()
    except (KeyError, ValueError, OverflowError, OSError):
        started = None
    return facts, mtime, started if started is not None and _sane(started) else None


def _owner(facts: Dict[str, str]) -> Row:
    return (facts.get("host", "?"), facts.get("worker_id", "?"), facts.get("pid", "?"))


def _running(round_dir: Path, number: int, view: RoundView, seen: Set[Tuple[str, int]]) -> List[Bar]:
    """Claims of unfinished tasks with no journal line yet, up to their last heartbeat."""
    bars = []
    for task, gens in view.claims.items():
        gen = max(gens)
        if view.finished(task) or (task, gen) in seen:
            continue
        facts, heartbeat, started = _record(round_dir / names.file_name(task, names.CLAIM, gen))
        if started is not None:
            bars.append(Bar(_owner(facts), task, number, gen, "claim", "running", started,
                            max(started, heartbeat)))
    return bars


def _lost(round_dir: Path, bars: List[Bar]) -> List[Bar]:
    """The attempts whose claims takeovers broke, on their dead holders' rows."""
    lost = []
    for bar in [b for b in bars if b.kind == "break"][:MAX_LOST_READS]:
        facts, _, started = _record(round_dir / names.file_name(bar.task, names.ERR, bar.attempt - 1))
        if facts.get("error", "").startswith("lease expired"):
            start = bar.start if started is None else min(started, bar.start)
            lost.append(dataclasses.replace(bar, row=_owner(facts), attempt=bar.attempt - 1,
                                            outcome="lost", kind="claim", start=start, end=bar.start))
    return lost


def _numbers(rounds: List[RoundData]) -> List[str]:
    """The table cells after round and state, for one round or the whole run."""
    views = [r.view for r in rounds]
    done = sum(len(v.outputs & v.inputs) for v in views)
    bars = [b for r in rounds for b in r.bars if b.outcome in JOURNALED]
    span = max(b.end for b in bars) - min(b.start for b in bars) if bars else 0.0
    counts = [sum(len(v.inputs) for v in views), done,
              sum(len((v.failed & v.inputs) - v.outputs) for v in views),
              sum(len(v.pending()) for v in views),
              sum(1 for v in views for t in v.claims if not v.finished(t)),
              sum(v.duplicates for v in views), len(bars), sum(b.outcome == "failed" for b in bars),
              sum(b.kind == "backup" for b in bars), sum(b.kind == "break" for b in bars)]
    wall = (f"{span:.1f} s" if span < 120 else
            f"{int(span // 3600)}:{int(span % 3600 // 60):02d}:{int(span % 60):02d}")
    rate = "–" if span <= 0 else f"{done / span:.2f} tasks/s" if done >= 0.1 * span \
        else f"{done / span * 3600:.1f} tasks/h"
    return [str(c) for c in counts] + [wall if bars else "–", rate]


def render(root: str, rounds: List[RoundData]) -> str:
    """The whole page for the store at ``root``."""
    esc = html.escape
    now = datetime.now().astimezone().isoformat(timespec="seconds")
    parts = [f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>fsmw report: '
             f"{esc(root)}</title><style>{CSS}</style></head><body><h1>fsmw report</h1>"
             f"<p>store <code>{esc(root)}</code>, read {esc(now)} on {esc(socket.gethostname())}</p>"]
    if not rounds:
        parts.append("<p><b>No rounds in this store yet</b>: the master has not started.</p>")
        return "".join(parts) + "</body></html>\n"
    head = ["round", "state", "tasks", "done", "failed", "pending", "running", "duplicates",
            "attempts", "failed attempts", "backups", "takeovers", "wall span", "throughput"]
    parts.append("<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>")
    for r in rounds:
        state = "closed" if r.view.closed else "sealed" if r.view.sealed else "open"
        cells = [str(r.number), state] + _numbers([r])
        parts.append("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in cells) + "</tr>")
    cells = ["all", f"{len(rounds)} round(s)"] + _numbers(rounds)
    parts.append('<tr class="all">' + "".join(f"<td>{esc(c)}</td>" for c in cells) + "</tr></table>")
    parts += [f'<p class="note">round {r.number}: {esc(r.note)}</p>' for r in rounds if r.note]
    bars = [b for r in rounds for b in r.bars]
    if not bars:
        return "".join(parts) + "<p><b>No attempts journaled yet.</b></p></body></html>\n"
    first = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(min(b.start for b in bars)))
    parts.append(f'<h2>Workers</h2><p class="note">x: seconds since the first claim ({first}), '
                 "by each worker's own clock; hover over a bar for details.</p>")
    parts.append(timeline(bars, {r.number: min(b.start for b in r.bars) for r in rounds if r.bars}))
    return "".join(parts) + "</body></html>\n"


def timeline(bars: List[Bar], round_starts: Dict[int, float]) -> str:
    """An SVG with one row per worker process and one bar per attempt."""
    rows = sorted({b.row for b in bars}, key=lambda r: [_natural(x) for x in r])
    index = {row: i for i, row in enumerate(rows)}
    t0 = min(b.start for b in bars)
    scale = PLOT_W / max(max(b.end for b in bars) - t0, 1e-3)
    if len(bars) > MAX_DETAILED:
        bars = _merge(bars, 1.0 / scale)
    width, height = LABEL_W + PLOT_W + 30, TOP + len(rows) * ROW_H + BOTTOM
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">'
           '<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
           'patternTransform="rotate(45)"><rect width="3" height="6" fill="#fff" opacity="0.6"/>'
           f'</pattern></defs>{_legend()}<text x="4" y="{TOP - 6}">host/worker/pid</text>']
    for i, row in enumerate(rows):
        y = TOP + i * ROW_H
        if i % 2:
            out.append(f'<rect x="0" y="{y}" width="{width}" height="{ROW_H}" fill="#f4f4f4"/>')
        label = "/".join((row[0][:20],) + row[1:])[:36]  # a long host name must not hide the pid
        out.append(f'<text x="4" y="{y + 13}">{html.escape(label)}</text>')
    out.append(_axis(scale, height, round_starts, t0))
    order = list(COLOURS)
    for bar in sorted(bars, key=lambda b: order.index(b.outcome)):
        x, y = LABEL_W + (bar.start - t0) * scale, TOP + index[bar.row] * ROW_H + 3
        w = (bar.end - bar.start) * scale  # less a pixel: a gap between back-to-back bars
        w = max(w - 1 if w >= 2 else w, 1.0)
        rect = f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{ROW_H - 6}"'
        title = f"<title>{html.escape(_tooltip(bar, t0))}</title>"
        if bar.outcome == "lost":
            held = f'{rect} fill="#000" opacity="0.25"/>' if w > 1 else ""
            out.append(f'<g>{title}{held}<path class="lost" d="M{x + w - 4:.1f} {y}l8 12m0-12l-8 12"/></g>')
        else:
            hatch = f'{rect} fill="url(#hatch)"/>' if bar.kind == "backup" else ""
            out.append(f'<g>{title}{rect} class="{bar.outcome} {bar.kind}"/>{hatch}</g>')
    return "".join(out) + "</svg>"


def _legend() -> str:
    items = [(k, f'<rect width="14" height="12" class="{k}"/>') for k in COLOURS if k != "lost"]
    items += [("backup copy", '<rect width="14" height="12" class="published"/>'
               '<rect width="14" height="12" fill="url(#hatch)"/>'),
              ("takeover of a stale claim", '<rect width="14" height="12" class="published break"/>'),
              ("lost (claim broken)", '<path class="lost" d="M3 0l8 12m0-12l-8 12"/>')]
    out, x = [], LABEL_W
    for label, swatch in items:
        out.append(f'<g transform="translate({x},8)">{swatch}<text x="19" y="10">{label}</text></g>')
        x += 28 + 7 * len(label)
    return "".join(out)


def _axis(scale: float, height: int, round_starts: Dict[int, float], t0: float) -> str:
    """Ticks in seconds from ``t0`` (1, 2 or 5 times a power of ten), and round starts."""
    span, bottom = PLOT_W / scale, height - BOTTOM
    unit = 10 ** math.floor(math.log10(span / 10))
    step = next(m * unit for m in (1, 2, 5, 10) if m * unit >= span / 10)
    out = [f'<line x1="{LABEL_W}" y1="{bottom}" x2="{LABEL_W + PLOT_W}" y2="{bottom}" stroke="#333"/>']
    for k in range(int(span / step + 1e-9) + 1):
        x = LABEL_W + k * step * scale
        out.append(f'<line x1="{x:.1f}" y1="{TOP - 4}" x2="{x:.1f}" y2="{bottom + 4}" stroke="#ccc"/>'
                   f'<text x="{x:.1f}" y="{bottom + 18}" text-anchor="middle">{round(k * step, 6):g} s'
                   "</text>")
    for number, start in sorted(round_starts.items()) if len(round_starts) > 1 else ():
        x = LABEL_W + (start - t0) * scale
        out.append(f'<line x1="{x:.1f}" y1="{TOP - 14}" x2="{x:.1f}" y2="{bottom}" stroke="#555" '
                   f'stroke-dasharray="4 3"/><text x="{x + 3:.1f}" y="{TOP - 6}">round {number}</text>')
    return "".join(out)


def _tooltip(bar: Bar, t0: float) -> str:
    who, at = "/".join(bar.row), f"{bar.start - t0:.1f}–{bar.end - t0:.1f} s"
    if bar.count > 1:
        return f"{bar.count} attempts {bar.outcome} ({bar.kind}), {at}, {who}"
    if bar.outcome == "lost":
        return (f"{bar.task} (round {bar.round}) attempt {bar.attempt}: lost (its holder stopped; "
                f"the claim was broken at {bar.end - t0:.1f} s), {who}")
    what = {"break": ", took over a stale claim", "backup": ", backup copy"}.get(bar.kind, "")
    return (f"{bar.task} (round {bar.round}) attempt {bar.attempt}: {bar.outcome}{what}, "
            f"{bar.end - bar.start:.2f} s ({at}), {who}")


def _merge(bars: List[Bar], gap: float) -> List[Bar]:
    """Join bars of one row, outcome and kind that are less than ``gap`` seconds apart."""
    merged: List[Bar] = []
    for bar in sorted(bars, key=lambda b: (b.row, b.outcome, b.kind, b.start)):
        last = merged[-1] if merged else None
        if last and (last.row, last.outcome, last.kind) == (bar.row, bar.outcome, bar.kind) \
                and bar.start - last.end < gap:
            last.end, last.count = max(last.end, bar.end), last.count + bar.count
        else:
            merged.append(dataclasses.replace(bar))
    return merged


def _natural(text: str) -> Tuple[int, int, str]:
    return (0, int(text), "") if text.isascii() and text.isdigit() else (1, 0, text)
