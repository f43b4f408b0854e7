"""The HTML page of ``fsmw report``: rendering only (what ``report`` read from the store).

The page is self-contained (inline CSS and SVG): a table of per-round and run
totals (:func:`_numbers`) and a timeline (:func:`timeline`) with one row per
worker process and one bar per attempt, coloured by outcome; backups are
hatched, takeovers of stale claims outlined, each bar has a ``<title>``
tooltip, a cross marks a lost attempt.  Above ``MAX_DETAILED`` bars, bars of a
row and outcome less than a pixel apart are merged: the page stays a few MB.
This module also holds the data it draws (:class:`Bar`, :class:`RoundData`),
so that ``report`` imports it and not the other way round.
"""

from __future__ import annotations

import dataclasses
import html
import math
import socket
import time
from datetime import datetime
from typing import Dict, List, Tuple

from .._core.view import RoundView

# Outcome -> colour, in drawing order (rare outcomes last, so they stay on top).
COLOURS = {"published": "#2ca02c", "running": "#1f77b4", "duplicate": "#ff8c00",
           "interrupted": "#999999", "failed": "#d62728", "lost": "#000000"}
JOURNALED = ("published", "duplicate", "failed", "interrupted")
MAX_DETAILED = 20_000  # bars drawn one by one, each with its own tooltip
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


def _numbers(rounds: List[RoundData]) -> List[str]:
    """The table cells after round and state, for one round or the whole run."""
    views = [r.view for r in rounds]
    done = sum(len(v.outputs & v.inputs) for v in views)
    bars = [b for r in rounds for b in r.bars if b.outcome in JOURNALED]
    span = max(b.end for b in bars) - min(b.start for b in bars) if bars else 0.0
    counts = [sum(len(v.inputs) for v in views), done,
              sum(len((v.failed & v.inputs) - v.outputs) for v in views),
              sum(len(v.pending()) for v in views),
              sum(len(v.running()) for v in views),
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
