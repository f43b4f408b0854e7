"""One listing of a round directory, parsed: which tasks are pending, running, done, failed.

Every decision about a round is made from a single listing of its directory
(no per-file ``stat``): :func:`scan_names` parses one, and
:class:`RoundTracker` keeps a :class:`RoundView` up to date from successive
listings, parsing only the names that came or went.

Property: a claim generation without an error record of the same generation
is live (attempts leave their claims in place; a failed or broken attempt has
an error record; a released claim is gone), so what is pending, running and
poisoned follows from the names alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Set

from . import layout as names

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

    def poisoned(self, limit: int) -> Dict[str, List[int]]:
        """Tasks with ``limit`` or more failed attempts, no result, no mark and no live claim.

        Their last writer died between recording the last error and marking
        the task failed: whoever sees one marks it (``RoundDir.mark_failed``).
        """
        return {task: gens for task, gens in self.errors.items()
                if len(gens) >= limit and not self.finished(task) and self.live_gen(task) is None}

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
        if names.is_temp(name):
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
