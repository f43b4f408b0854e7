"""A read-mostly snapshot of a store, for ``fsmw status``, ``requeue`` and ``clean``.

Ages of claims and temp files are measured in the *file system's* clock:
:func:`fs_now` creates a temp file in the store root, reads its mtime and
removes it (where the store is not writable it falls back to this host's
clock and says so).  A claim's age is then ``fs_now - mtime`` of its newest
generation: a live holder touches it every ``lease_secs / 5``.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from .._core import layout as names
from .._core.atomic import temp_path, unlink_quietly
from .._core.claims import read_text
from .._core.errors import StoreError
from .._core.journal import read_journals
from .._core.owner import parse_record
from .._core.records import error_line
from .._core.store import RoundView, Store, scan_names


def fs_now(store: Store) -> Tuple[float, bool]:
    """(now in the file system's clock, True) or (this host's clock, False)."""
    probe = temp_path(store.root)
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError:
        return time.time(), False
    try:
        return os.fstat(fd).st_mtime, True
    finally:
        os.close(fd)
        unlink_quietly(probe)


@dataclass
class Running:
    task: str
    attempt: int
    heartbeat_age: Optional[float]
    host: Optional[str] = None
    worker_id: Optional[str] = None
    pid: Optional[str] = None
    job_id: Optional[str] = None


@dataclass
class RoundState:
    number: int
    tasks: int
    pending: int
    running: List[Running]
    done: int
    failed: Dict[str, str]
    duplicates: int
    sealed: bool
    closed: bool
    rate: Optional[float] = None
    eta_secs: Optional[float] = None
    view: RoundView = field(default_factory=RoundView, repr=False)

    def as_dict(self) -> dict:
        data = asdict(self)
        data.pop("view")
        data["running"] = [asdict(r) for r in self.running]
        return data


def check_store(store: Store) -> None:
    if not store.root.is_dir():
        what = "is not a directory" if store.root.exists() else "does not exist"
        raise StoreError(f"store {store.root} {what}")


def round_state(store: Store, number: int, now: float) -> RoundState:
    entries = store.listing(number)
    view = scan_names(entries)
    round_dir = store.round_dir(number)
    running = [_running(round_dir, task, gen, now) for task, gen in sorted(view.running().items())]
    failed = {t: error_line(read_text(round_dir / names.file_name(t, names.FAILED)))
              for t in sorted(view.failed - view.outputs)}
    done = len(view.outputs & view.inputs)
    state = RoundState(number, len(view.inputs), 0, running, done, failed, view.duplicates,
                       view.sealed, view.closed, view=view)
    state.pending = max(0, state.tasks - done - len(failed) - len(running))
    _rate(state, round_dir, entries)
    return state


def _running(round_dir: Path, task: str, gen: int, now: float) -> Running:
    path = round_dir / names.file_name(task, names.CLAIM, gen)
    try:
        age: Optional[float] = max(0.0, now - os.stat(path).st_mtime)
    except OSError:
        age = None
    owner = parse_record(read_text(path) or b"")
    facts = {k: owner.get(k) for k in ("host", "worker_id", "pid", "job_id")}
    # An unknown fact is null in --json ("None" is how a record writes a missing one).
    return Running(task, gen, age, **{k: None if v in (None, "None", "") else v
                                      for k, v in facts.items()})


def _rate(state: RoundState, round_dir: Path, entries: List[str]) -> None:
    """Tasks per second from the journals (published attempts over their span)."""
    lines = [j for j in read_journals(round_dir, entries) if j.get("outcome") == "published"]
    if len(lines) < 2:
        return
    try:
        span = max(float(j["ended"]) for j in lines) - min(float(j["claimed"]) for j in lines)
    except (KeyError, TypeError, ValueError):
        return
    if span > 0:
        state.rate = len(lines) / span
        left = state.tasks - state.done - len(state.failed)
        state.eta_secs = left / state.rate if left > 0 else 0.0
