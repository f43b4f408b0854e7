"""The store directory: every path fsmw uses, and one-listing views of it.

Layout (readable with ``ls -a``)::

    STORE/STOP                       the master's last round is done: workers exit
    STORE/round-000001/              one directory per round, never reused
        SEALED                       the master has written every input
        CLOSED                       the round is over; says what comes next
        <task>.in / .claim.<g> / .out / .err.<g> / .failed / .dup.<hex>
        .tmp.<host>.<pid>.<hex>      a file being written (two-stage creation)
        .worker.<host>.<pid>.<hex>   a worker's claim token (claims are links to it)

Property: a round's files live only in that round's directory, so a late file
of round k can never satisfy round k+1; and every decision about a round is
made from a single listing of its directory (no per-file ``stat``).
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Set, Union

from . import layout as names
from .atomic import is_temp
from .errors import StoreError


@dataclass
class RoundView:
    """What one listing of a round directory says about its tasks."""

    inputs: Set[str] = field(default_factory=set)
    outputs: Set[str] = field(default_factory=set)
    failed: Set[str] = field(default_factory=set)
    claims: Dict[str, List[int]] = field(default_factory=dict)
    errors: Dict[str, List[int]] = field(default_factory=dict)
    duplicates: int = 0
    temps: List[str] = field(default_factory=list)
    sealed: bool = False
    closed: bool = False

    def finished(self, task: str) -> bool:
        return task in self.outputs or task in self.failed

    def live_gen(self, task: str) -> Optional[int]:
        """The newest generation of ``task`` whose attempt has not ended, or None.

        Claims stay in place when their attempt ends; an attempt that failed or
        was broken has an error record of the same generation, and a released
        claim is gone, so a claim without an error record is still running.
        """
        gens = self.claims.get(task)
        if not gens:
            return None
        ended = self.errors.get(task, ())
        live = [g for g in gens if g not in ended]
        return max(live) if live else None

    def running(self) -> Dict[str, int]:
        """Unfinished tasks with a live claim: task -> its newest live generation."""
        found = {}
        for task in self.claims:
            if not self.finished(task):
                gen = self.live_gen(task)
                if gen is not None:
                    found[task] = gen
        return found

    def pending(self) -> List[str]:
        """Inputs with no result, no failure mark and no live claim."""
        busy = self.outputs | self.failed
        claims = self.claims
        return [t for t in self.inputs
                if t not in busy and (t not in claims or self.live_gen(t) is None)]

    def next_gen(self, task: str) -> int:
        """The claim generation after every one this listing shows for ``task``."""
        seen = self.claims.get(task, []) + self.errors.get(task, [])
        return max(seen, default=0) + 1

    def error_count(self, task: str) -> int:
        return len(self.errors.get(task, ()))

    def remaining(self) -> int:
        return len(self.inputs - self.outputs - self.failed)


def scan_names(entries: Iterable[str]) -> RoundView:
    """Build a :class:`RoundView` from the names in one directory listing."""
    view = RoundView()
    for name in entries:
        _apply(view, name, True)
    return view


def _apply(view: RoundView, name: str, add: bool) -> None:
    """Add ``name`` to ``view`` (or take it out: ``add`` False)."""
    entry = names.parse(name)
    if entry is None:
        if is_temp(name):
            if add:
                view.temps.append(name)
            elif name in view.temps:
                view.temps.remove(name)
        elif name == names.SEALED:
            view.sealed = add
        elif name == names.CLOSED:
            view.closed = add
        return
    task, kind, gen = entry
    if kind in (names.IN, names.OUT, names.FAILED):
        group = view.inputs if kind == names.IN else view.outputs if kind == names.OUT else view.failed
        if add:
            group.add(task)
        else:
            group.discard(task)
    elif kind in (names.CLAIM, names.ERR):
        gens = view.claims if kind == names.CLAIM else view.errors
        if add:
            gens.setdefault(task, []).append(gen)  # type: ignore[arg-type]
        elif gen in gens.get(task, ()):
            gens[task].remove(gen)  # type: ignore[arg-type]
            if not gens[task]:
                del gens[task]
    else:
        view.duplicates += 1 if add else -1


class RoundTracker:
    """Keeps a :class:`RoundView` of one directory up to date from successive listings.

    Each :meth:`update` parses only the names that came or went since the
    previous listing, so polling a round of N tasks costs one listing plus
    work proportional to what changed, not N name parses.
    """

    def __init__(self) -> None:
        self.view = RoundView()
        self._names: Set[str] = set()

    def update(self, entries: Iterable[str]) -> Set[str]:
        """Apply a new listing; return the names that are new since the last one."""
        current = set(entries)
        came, went = current - self._names, self._names - current
        for name in went:
            _apply(self.view, name, False)
        for name in came:
            _apply(self.view, name, True)
        self._names = current
        return came


class Store:
    """Owns every path under a store directory.

    Args:
        root: the store directory (on a file system all nodes share).
    """

    def __init__(self, root: Union[str, "os.PathLike[str]"]) -> None:
        self.root = Path(root)
        self._name_max: Optional[int] = None

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    # -- paths ------------------------------------------------------------
    @property
    def stop_file(self) -> Path:
        return self.root / names.STOP

    def round_dir(self, number: int) -> Path:
        return self.root / names.round_name(number)

    def marker(self, number: int, which: str) -> Path:
        return self.round_dir(number) / which

    def task_file(self, number: int, task: str, kind: str, gen: Optional[int] = None) -> Path:
        return self.round_dir(number) / names.file_name(task, kind, gen)

    # -- checks -----------------------------------------------------------
    def name_max(self) -> int:
        if self._name_max is None:
            try:
                self._name_max = os.pathconf(self.root, "PC_NAME_MAX")
            except (OSError, ValueError):
                self._name_max = 255
        return self._name_max

    def check(self, create: bool = False) -> None:
        """Make sure the store is a writable directory (creating it if asked).

        Raises:
            StoreError: naming the store and what is wrong with it.
        """
        root = self.root
        if create and not root.exists():
            if not root.parent.is_dir():
                raise StoreError(f"cannot create store {root}: its parent directory "
                                 f"{root.parent} does not exist")
            try:
                root.mkdir(exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create store {root}: {exc.strerror}") from exc
        if not root.is_dir():
            what = "is not a directory" if root.exists() else "does not exist"
            raise StoreError(f"store {root} {what}; start the master first or fix --store")
        if not os.access(root, os.W_OK | os.X_OK):
            raise StoreError(f"store {root} is not writable by this user (uid {os.getuid()})")

    # -- listings ---------------------------------------------------------
    def rounds(self) -> List[int]:
        """Numbers of the round directories, ascending (one listing of the root)."""
        found = (names.round_number(n) for n in self._listdir(self.root))
        return sorted(n for n in found if n is not None)

    def root_names(self) -> List[str]:
        return self._listdir(self.root)

    def listing(self, number: int) -> List[str]:
        """The names in round ``number``'s directory (one listing)."""
        return self._listdir(self.round_dir(number))

    def scan(self, number: int) -> RoundView:
        """One listing of round ``number``, parsed."""
        return scan_names(self.listing(number))

    @staticmethod
    def _listdir(path: Path) -> List[str]:
        try:
            return os.listdir(path)
        except FileNotFoundError:
            return []
        except OSError as exc:
            if exc.errno == errno.ESTALE:
                return []
            raise StoreError(f"cannot list {path}: {exc.strerror}") from exc
