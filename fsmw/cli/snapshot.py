"""A read-mostly snapshot of a store, for ``fsmw status``, ``requeue`` and ``report``.

Ages of claims and temp files are measured in the *file system's* clock
(``_core.fsinfo.fs_now``: a new file's mtime; where the store is not
writable, this host's clock, and status says so).  A claim's age is then
``fs_now - mtime`` of its newest generation: a live holder touches it every
``lease_secs / 5``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional, Tuple

from .._core import layout as names
from .._core.fsinfo import fs_now
from .._core.journal import read_journals
from .._core.records import error_line, parse_record
from .._core.rounddir import RoundDir
from .._core.store import Store
from .._core.system import REAL_CLOCK
from .._core.view import RoundView
from .roundfiles import RoundFiles


def store_now(store: Store) -> Tuple[float, bool]:
    """(now in the file system's clock, True) or (this host's clock, False)."""
    now = fs_now(store.root, store.fs)
    return (REAL_CLOCK.time(), False) if now is None else (now, True)


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


def round_state(store: Store, number: int, now: float) -> RoundState:
    round_dir = RoundFiles(store.round(number))
    entries = round_dir.listing()
    view = round_dir.scan(entries)
    running = [_running(round_dir, task, gen, now) for task, gen in sorted(view.running().items())]
    failed = {t: error_line(round_dir.read(names.file_name(t, names.FAILED)))
              for t in sorted(view.failed - view.outputs)}
    done = len(view.outputs & view.inputs)
    state = RoundState(number, len(view.inputs), 0, running, done, failed, view.duplicates,
                       view.sealed, view.closed, view=view)
    state.pending = max(0, state.tasks - done - len(failed) - len(running))
    _rate(state, round_dir.round, entries)
    return state


def _running(round_dir: RoundFiles, task: str, gen: int, now: float) -> Running:
    name = names.file_name(task, names.CLAIM, gen)
    try:
        age: Optional[float] = max(0.0, now - round_dir.fs.stat(round_dir.join(name)).st_mtime)
    except OSError:
        age = None
    owner = parse_record(round_dir.read(name))
    facts = {k: owner.get(k) for k in ("host", "worker_id", "pid", "job_id")}
    # An unknown fact is null in --json ("None" is how a record writes a missing one).
    return Running(task, gen, age, **{k: None if v in (None, "None", "") else v
                                      for k, v in facts.items()})


def _rate(state: RoundState, round_dir: RoundDir, entries: List[str]) -> None:
    """Tasks per second from the journals (published attempts over their span)."""
    lines = [j for j in read_journals(round_dir, entries)
             if j.get("outcome") == "published"]
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
