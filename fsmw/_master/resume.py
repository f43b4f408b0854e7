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

from typing import Any, Callable, List, Optional, Set, Tuple

from .._core import layout as names
from .._core.atomic import parent_dir
from .._core.errors import StoreError
from .._core.records import parse_record
from .._core.rounddir import RoundDir
from .._core.shard import LEGACY
from .parallel import ParallelWrites
from .sinks import DIGEST_KIND, SHOWN, Check, Compare, Diagnose, Fresh, Placement, Sink, round_inputs



class RoundMismatch(StoreError):
    """A restarted master's ``create_input_files()`` yields other tasks than its open round holds."""


def sealed_digest(record: Optional[bytes]) -> Optional[Tuple[int, str]]:
    """(tasks, digest) from a ``SEALED`` record, or None if it has no digest."""
    facts = parse_record(record)
    if not facts.get("digest", "").startswith(DIGEST_KIND + " ") or not facts.get("tasks", "").isdigit():
        return None
    return int(facts["tasks"]), facts["digest"]


Run = Callable[[Sink], Set[str]]  # sets the master's sink, calls create_input_files(), the names


def create_inputs(round_dir: RoundDir, run: Run, shard_size: int, fsync: bool, log: Any,
                  parallel: bool = False) -> Set[str]:
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
    sink = Fresh(round_dir, shard_size, fsync, ParallelWrites() if parallel else None)
    try:
        tasks = run(sink)
    except BaseException:
        sink.finish(quietly=True)  # no thread left behind; the hook's error is the one raised
        raise
    sink.finish()  # every input in place before SEALED
    round_dir.write_marker(names.SEALED, sink.digest.sealed_record())
    log.info("round %d: %d tasks", round_dir.number, len(tasks))
    return tasks


def resume_inputs(round_dir: RoundDir, run: Run, shard_size: int, fsync: bool, log: Any) -> Set[str]:
    """Call ``create_input_files()`` (through ``run``) against the open round ``round_dir``.

    Args:
        fsync: whether inputs written now are flushed first.

    Returns:
        The round's task names.

    Raises:
        RoundMismatch: the tasks differ; the store is unchanged.
    """
    log.warning("round %d was left open by an earlier master; resuming it", round_dir.number)
    if round_dir.shards() == [LEGACY]:
        raise StoreError(f"{round_dir.path} was left open by an fsmw from before shards (its task "
                         f"files are in the round directory); finish it with that fsmw, or set "
                         f"abandon_open_round=True (--abandon_open_round) to close it and start a new round")
    tasks, written = _resume(round_dir, run, shard_size, fsync)
    log.info("round %d: resumed, %d tasks (%d missing inputs written now)", round_dir.number,
             len(tasks), written)
    return tasks


def _resume(round_dir: RoundDir, run: Run, shard_size: int, fsync: bool) -> Tuple[Set[str], int]:
    record = round_dir.read(names.SEALED)
    sealed = sealed_digest(record)
    if sealed is not None:
        compare = Compare(round_dir, Placement(round_dir, shard_size, make=False))
        tasks = run(compare)
        if (compare.digest.count, compare.digest.text) == sealed:
            return tasks, 0
        inputs, _ = round_inputs(round_dir)
        gone, new = sorted(inputs.keys() - tasks), sorted(tasks - inputs.keys())
        changed: List[str] = []
        if not gone and not new:
            diagnose = Diagnose(round_dir, inputs, Placement(round_dir, shard_size, make=False))
            run(diagnose)
            changed = diagnose.changed or ["none found by reading the inputs, but the digest in "
                                           "SEALED differs: does create_input_files() yield the same "
                                           "bytes every time?"]
        raise RoundMismatch(_message(round_dir, gone, new, changed))
    inputs, last = round_inputs(round_dir)
    check = Check(round_dir, inputs, last, shard_size, fsync, write=record is None)
    try:
        tasks = run(check)
        gone = sorted(check.inputs.keys() - tasks)
        new = sorted(tasks - check.inputs.keys()) if record is not None else []
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
