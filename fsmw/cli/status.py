"""``fsmw status``: per round, what is pending, running, done and failed.

Reads the store only (plus one probe file in its root to learn the file
system's clock, see ``snapshot``).  Text for people, ``--json`` for scripts,
``--watch`` to refresh in place.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import List, TextIO

from .snapshot import RoundState, round_state, store_now
from .._master.progress import format_eta
from .._core.store import Store


def status_command(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    store = Store(args.store)
    while True:
        store.check(writable=False)
        now, fs_clock = store_now(store)
        states = [round_state(store, n, now) for n in store.rounds()]
        stopped = store.stopped()
        if args.json:
            out.write(json.dumps(dict(store=str(store.root), stopped=stopped, fs_clock=fs_clock,
                                      rounds=[s.as_dict() for s in states]), indent=1) + "\n")
        else:
            if args.watch:
                out.write("\x1b[H\x1b[2J")
            out.write(render(str(store.root), states, stopped, fs_clock, args.lease))
        out.flush()
        if not args.watch:
            return 0
        time.sleep(args.watch)


def render(root: str, states: List[RoundState], stopped: bool, fs_clock: bool, lease: float) -> str:
    lines = [f"store {root}: " + (f"{len(states)} round(s)" if states else "no rounds yet")
             + ("; STOP written (the run is over)" if stopped else "")]
    if states:
        lines.append(f"{'round':>5} {'tasks':>7} {'pending':>8} {'running':>8} {'done':>7} "
                     f"{'failed':>7} {'dups':>5}  state")
    for s in states:
        state = "closed" if s.closed else ("open, sealed" if s.sealed else "open, inputs being written")
        lines.append(f"{s.number:>5} {s.tasks:>7} {s.pending:>8} {len(s.running):>8} {s.done:>7} "
                     f"{len(s.failed):>7} {s.duplicates:>5}  {state}")
    current = next((s for s in reversed(states) if not s.closed), None)
    if current is not None and current.rate:
        lines.append(f"round {current.number}: {current.rate:.2f} tasks/s, "
                     f"{format_eta(current.eta_secs)}")
    for s in states:
        for r in s.running:
            age = "?" if r.heartbeat_age is None else f"{r.heartbeat_age:.0f} s ago"
            stale = "  STALE" if r.heartbeat_age is not None and r.heartbeat_age > lease else ""
            job = f", job {r.job_id}" if r.job_id else ""
            lines.append(f"  running  round {s.number} {r.task} attempt {r.attempt}: worker "
                         f"{r.worker_id}@{r.host} (pid {r.pid}{job}), heartbeat {age}{stale}")
        for task, error in s.failed.items():
            lines.append(f"  failed   round {s.number} {task}: {error}")
    if not fs_clock:
        lines.append("(heartbeat ages use this host's clock: the store is not writable here)")
    return "\n".join(lines) + "\n"
