"""Resuming the round an earlier master left open (issue 11, item 6).

Protocol: a master writes each round's inputs through a *sink*.  At a round's
first start (:class:`Fresh`) the sink writes every input and folds its name
and bytes into an order-independent :class:`Digest` (the sum, modulo 2**256,
of ``sha256(name NUL bytes)`` per task), which goes into ``SEALED``
(``tasks: N`` and ``digest: sha256-sum <hex>``) in the same atomic write that
seals the round.  So a crash leaves one of two decidable states: no
``SEALED`` (the inputs may be incomplete), or ``SEALED`` with the digest of
every input the round has.

A restarted master calls ``create_input_files()`` again for the newest round
without ``CLOSED`` (:func:`resume_inputs`):

* sealed with a digest: :class:`Compare` only hashes what would be written
  (no file is read or written); equal counts and digests resume the round.
  Only on a mismatch does it look closer: names against one listing, then,
  if every name matches, a second ``create_input_files()`` call
  (:class:`Diagnose`) reads inputs until it has found a few that differ;
* not sealed (the master died while writing inputs), or sealed by an older
  fsmw without a digest: :class:`Check` reads each input the listing shows
  and compares its bytes (one read per input written before the crash), and
  writes each missing input as a temp file; only if nothing differs are the
  temps renamed into place and the round sealed.

Which round: the newest one without ``CLOSED``.  ``create_input_files()``
runs with ``Master.round`` set to its number, so a master that derives its
tasks from ``self.round`` (as the examples do) yields them again; one that
derives them from state built in earlier rounds must rebuild that state
itself, since earlier rounds are never processed again (closed rounds are
left as they are; an older round still open, whose successor exists, is
closed with ``next: round-<n>``).  An unsealed round accepts any tasks that
agree with the inputs it already has.

Property: a resumed round's inputs are exactly the tasks
``create_input_files()`` yields now (no input rewritten, no claim touched),
or :class:`RoundMismatch` is raised, naming the first differences, and the
store is as it was (temps written meanwhile are removed).  The digest
catches accidental differences, not forgeries.
"""

from __future__ import annotations

import hashlib
from typing import Any, Callable, List, Optional, Set, Tuple

from .._core import layout as names
from .._core.atomic import parent_dir, read_small
from .._core.errors import StoreError
from .._core.records import parse_record
from .._core.rounddir import RoundDir

MASK = (1 << 256) - 1
SHOWN = 5  # differences named in the error
DIGEST_KIND = "sha256-sum"


class RoundMismatch(StoreError):
    """A restarted master's ``create_input_files()`` yields other tasks than its open round holds."""


class Digest:
    """An order-independent digest of a round's inputs (names and bytes)."""

    def __init__(self) -> None:
        self.count = 0
        self._sum = 0

    def add(self, name: str, data: bytes) -> None:
        h = hashlib.sha256(name.encode("utf-8") + b"\0")
        h.update(data)
        self._sum = (self._sum + int.from_bytes(h.digest(), "big")) & MASK
        self.count += 1

    @property
    def text(self) -> str:
        return f"{DIGEST_KIND} {self._sum:064x}"

    def sealed_record(self) -> str:
        """What ``SEALED`` holds: the number of tasks and the digest."""
        return f"tasks: {self.count}\ndigest: {self.text}\n"


class Sink:
    """Where ``Master.create_input_file`` sends each input, once validated."""

    def __init__(self, round_dir: RoundDir) -> None:
        self.round_dir = round_dir
        self.digest = Digest()

    def put(self, name: str, data: bytes) -> str:
        """Take one input; return its final path."""
        self.digest.add(name, data)
        return self.round_dir.file(name, names.IN)


class Fresh(Sink):
    """A new round: write every input (temp, [fsync], rename)."""

    def __init__(self, round_dir: RoundDir, fsync: bool) -> None:
        super().__init__(round_dir)
        self._fsync = fsync

    def put(self, name: str, data: bytes) -> str:
        self.digest.add(name, data)
        return self.round_dir.write_input(name, data, self._fsync)


class Compare(Sink):
    """A sealed round with a digest: hash only; nothing is read or written."""


class Diagnose(Sink):
    """Read inputs and compare their bytes until :data:`SHOWN` differences are found."""

    def __init__(self, round_dir: RoundDir, inputs: Set[str]) -> None:
        super().__init__(round_dir)
        self.inputs = inputs
        self.changed: List[str] = []

    def put(self, name: str, data: bytes) -> str:
        if name in self.inputs and len(self.changed) <= SHOWN:  # reads stop after a few (and one more)
            self._compare(name, data)
        return super().put(name, data)

    def _compare(self, name: str, data: bytes) -> None:
        there = read_small(self.round_dir.file(name, names.IN), limit=len(data) + 1, fs=self.round_dir.fs)
        if there == data:
            return
        if len(self.changed) < SHOWN:
            size = "no" if there is None else f"more than {len(data)}" if len(there) > len(data) \
                else str(len(there))
            self.changed.append(f"{name} ({size} bytes in the store, {len(data)} now)")
        elif len(self.changed) == SHOWN:
            self.changed.append("...")


class Check(Diagnose):
    """An unsealed round (or one sealed without a digest): compare what exists, stage what is missing."""

    def __init__(self, round_dir: RoundDir, inputs: Set[str], fsync: bool, write: bool) -> None:
        super().__init__(round_dir, inputs)
        self._fsync = fsync
        self._write = write
        self._staged: List[Tuple[str, str]] = []  # (temp path, task name): no more held per input

    def put(self, name: str, data: bytes) -> str:
        if name in self.inputs:
            self._compare(name, data)
        elif self._write:
            self._staged.append((self.round_dir.temp(data, self._fsync), name))
        self.digest.add(name, data)
        return self.round_dir.file(name, names.IN)

    def publish(self) -> int:
        """Rename the staged inputs into place; how many there were."""
        for tmp, name in self._staged:
            self.round_dir.fs.rename(tmp, self.round_dir.file(name, names.IN))
        return len(self._staged)

    def discard(self) -> None:
        for tmp, _ in self._staged:
            self.round_dir.unlink(tmp.rpartition("/")[2])
        self._staged = []


def sealed_digest(record: Optional[bytes]) -> Optional[Tuple[int, str]]:
    """(tasks, digest) from a ``SEALED`` record, or None if it has no digest."""
    facts = parse_record(record)
    if not facts.get("digest", "").startswith(DIGEST_KIND + " ") or not facts.get("tasks", "").isdigit():
        return None
    return int(facts["tasks"]), facts["digest"]


Run = Callable[[Sink], Set[str]]  # sets the master's sink, calls create_input_files(), the names


def create_inputs(round_dir: RoundDir, run: Run, fsync: bool, log: Any) -> Set[str]:
    """Make a new round's directory, write its inputs (through ``run``), seal it with the digest.

    Raises:
        StoreError: the round's directory exists already (another master?).
    """
    try:
        round_dir.create()
    except FileExistsError as exc:
        raise StoreError(f"{round_dir.path} already exists: is another master running "
                         f"on {parent_dir(round_dir.path)}?") from exc
    log.info("round %d: creating inputs", round_dir.number)
    sink = Fresh(round_dir, fsync)
    tasks = run(sink)
    round_dir.write_marker(names.SEALED, sink.digest.sealed_record())
    log.info("round %d: %d tasks", round_dir.number, len(tasks))
    return tasks


def resume_inputs(round_dir: RoundDir, run: Run, fsync: bool, log: Any) -> Set[str]:
    """Call ``create_input_files()`` (through ``run``) against the open round ``round_dir``.

    Args:
        fsync: whether inputs written now are flushed first.

    Returns:
        The round's task names.

    Raises:
        RoundMismatch: the tasks differ; the store is unchanged.
    """
    log.warning("round %d was left open by an earlier master; resuming it", round_dir.number)
    tasks, written = _resume(round_dir, run, fsync)
    log.info("round %d: resumed, %d tasks (%d missing inputs written now)", round_dir.number,
             len(tasks), written)
    return tasks


def _resume(round_dir: RoundDir, run: Run, fsync: bool) -> Tuple[Set[str], int]:
    record = round_dir.read(names.SEALED)
    sealed = sealed_digest(record)
    if sealed is not None:
        compare = Compare(round_dir)
        tasks = run(compare)
        if (compare.digest.count, compare.digest.text) == sealed:
            return tasks, 0
        inputs = round_dir.scan().inputs
        gone, new = sorted(inputs - tasks), sorted(tasks - inputs)
        changed: List[str] = []
        if not gone and not new:
            diagnose = Diagnose(round_dir, inputs)
            run(diagnose)
            changed = diagnose.changed or ["none found by reading the inputs, but the digest in "
                                           "SEALED differs: does create_input_files() yield the same "
                                           "bytes every time?"]
        raise RoundMismatch(_message(round_dir, gone, new, changed))
    check = Check(round_dir, round_dir.scan().inputs, fsync, write=record is None)
    try:
        tasks = run(check)
        gone = sorted(check.inputs - tasks)
        new = sorted(tasks - check.inputs) if record is not None else []
        if gone or new or check.changed:
            raise RoundMismatch(_message(round_dir, gone, new, check.changed))
    except BaseException:
        check.discard()
        raise
    written = check.publish()
    if record is None:
        round_dir.write_marker(names.SEALED, check.digest.sealed_record())
    return tasks, written


def _message(round_dir: RoundDir, gone: List[str], new: List[str], changed: List[str]) -> str:
    parts = []
    if gone:
        parts.append(f"{len(gone)} task(s) in the store no longer yielded ({_first(gone)})")
    if new:
        parts.append(f"{len(new)} new task(s) ({_first(new)})")
    if changed:
        parts.append(f"task(s) with other input bytes: {', '.join(changed)}")
    return (f"{round_dir.path} was left open by an earlier master, but create_input_files() now yields "
            f"other tasks: {'; '.join(parts)}. Nothing was changed. Yield the same tasks to resume "
            f"the round, or set abandon_open_round=True (--abandon_open_round) to close it and "
            f"start a new round.")


def _first(items: List[str]) -> str:
    shown = ", ".join(items[:SHOWN])
    return shown + (", ..." if len(items) > SHOWN else "")
