"""One shard of a round: a directory of at most ``shard_size`` tasks and every record of them.

A round's tasks are spread over shards (``round-k/shard-000000/``, ...; see
``rounddir``) so that no listing grows with the round.  Every file of a task
(input, claims, output, records) lives in its shard, so every rule below is
a rule of one directory, as it was when a round had one.

This is the one home of the rules that several roles share:
  * inputs are published with ``rename`` (one writer), outputs and records
    with a no-clobber ``link`` (see ``atomic``);
  * a failed attempt leaves ``<task>.err.<g>``, and the task is marked
    ``<task>.failed`` once its error records reach ``max_attempts``
    (:meth:`Shard.record_failure`, :meth:`Shard.mark_failed`), whoever
    notices it: the attempt's holder, a judge that broke its claim, a worker
    or master that finds a poisoned task;
  * a stale claim is broken by one procedure (:meth:`Shard.break_claim`),
    for workers and for ``fsmw requeue --stale`` alike: rename a record of the
    break over the claim, which fences its holder (see ``claims``), then
    record the lost attempt.

Property: the number of ``.err.*`` files of a task is the number of attempts
that failed, whoever wrote them and however they raced, and the failure mark
is written only once that number reaches the limit.
"""

from __future__ import annotations

import errno
import logging
from contextlib import contextmanager
from typing import Iterator, List, Mapping, Optional, Sequence, Tuple

from . import layout as names
from .atomic import publish, read_small, unlink_quietly, write_new, write_temp
from .claims import Claim, fence
from .records import error_line, failed_record, format_record, parse_record, who
from .errors import StoreError
from .system import GONE, FileSystem, PathLike, lexists, token_hex
from .view import RoundView, scan_names

log = logging.getLogger("fsmw.round")
LEGACY = -1  # the index of a round written before shards: its tasks are in the round directory


class Shard:
    """Shard ``index`` of round ``number`` (whose directory is ``round_path``), reached through ``fs``."""

    def __init__(self, round_path: str, number: int, index: int, fs: FileSystem) -> None:
        self.round_path = round_path
        self.path = round_path if index == LEGACY else f"{round_path}/{names.shard_name(index)}"
        self.number = number
        self.index = index
        self.fs = fs

    def __repr__(self) -> str:
        return f"Shard({self.path!r})"

    # -- paths and listings ----------------------------------------------------
    def file(self, task: str, kind: str, gen: Optional[int] = None) -> str:
        return f"{self.path}/{names.file_name(task, kind, gen)}"

    def join(self, name: str) -> str:
        return f"{self.path}/{name}"

    def has(self, name: str) -> bool:
        return lexists(self.fs, self.join(name))

    def finished(self, task: str) -> bool:
        """A fresh look (two ``lstat``): has ``task`` a result or a failure mark?"""
        return self.has(names.file_name(task, names.OUT)) or self.has(names.file_name(task, names.FAILED))

    def listing(self) -> List[str]:
        return listdir(self.fs, self.path)

    def round_closed(self) -> bool:
        """A fresh look (one ``lstat``): has the round this shard belongs to been closed?"""
        return lexists(self.fs, f"{self.round_path}/{names.CLOSED}")

    def scan(self) -> RoundView:
        return scan_names(self.listing())

    def read(self, name: str) -> Optional[bytes]:
        return read_small(self.join(name), fs=self.fs)

    def unlink(self, name: str) -> None:
        unlink_quietly(self.join(name), self.fs)

    # -- the master's files ----------------------------------------------------
    def create(self) -> None:
        """Make the shard's directory; FileExistsError if it exists."""
        self.fs.mkdir(self.path)

    def write_input(self, task: str, data: bytes, fsync: bool) -> str:
        final = self.file(task, names.IN)
        self.fs.rename(write_temp(self.path, data, fsync, self.fs), final)
        return final

    # -- the workers' files -----------------------------------------------------
    def temp(self, data: bytes, fsync: bool) -> str:
        return write_temp(self.path, data, fsync, self.fs)

    def publish_output(self, tmp: str, task: str, local: bool = False) -> bool:
        """Publish the complete temp ``tmp`` as ``<task>.out`` unless one exists."""
        return publish(tmp, self.file(task, names.OUT), self.fs, local)

    def write_duplicate(self, task: str, facts: Mapping[str, object]) -> None:
        write_new(self.join(names.dup_name(task, token_hex(fs=self.fs))), format_record(facts), fs=self.fs)

    # -- failures: the one home of "mark a task failed" --------------------------
    def record_failure(self, task: str, gen: int, facts: Mapping[str, object], body: str,
                       max_attempts: int) -> Tuple[int, bool]:
        """Write attempt ``gen``'s error record; mark the task failed at the limit.

        One record per attempt: if the attempt already has one (its holder
        failed while a judge broke its claim), that one is kept.

        Returns:
            (failed attempts counted afresh, True if this call marked the task failed).
        """
        write_new(self.file(task, names.ERR, gen), format_record(facts, body), fs=self.fs)
        attempts = self.count_errors(task, gen)
        if attempts < max_attempts:
            return attempts, False
        return attempts, self.mark_failed(task, attempts, gen)

    def count_errors(self, task: str, upto: int) -> int:
        """How many error records ``task`` has, probing ``.err.1`` up to ``.err.<upto>`` and on.

        A fresh count (a few ``lstat`` calls) rather than an old listing's: the
        attempt limit must hold however stale the caller's listing was.
        """
        count, number = 0, 1
        while True:
            if self.has(names.file_name(task, names.ERR, number)):
                count += 1
            elif number > upto:
                return count
            number += 1

    def mark_failed(self, task: str, attempts: int, last_gen: int) -> bool:
        """Write ``<task>.failed`` with the last error record; False if it already was."""
        last = self.read(names.file_name(task, names.ERR, last_gen))
        return write_new(self.file(task, names.FAILED), failed_record(attempts, last), fs=self.fs)

    def mark_poisoned(self, view: RoundView, limit: int) -> List[str]:
        """Mark failed every task ``view`` shows at the attempt limit; the ones this call marked.

        ``view`` may be seconds old: a task is marked only if a fresh look
        (three ``lstat``) finds it still unfinished and no newer attempt
        claimed since (a backup, or a worker allowed more attempts).
        """
        return [task for task, gens in view.poisoned(limit).items()
                if not self.finished(task) and not self._claimed(task, view.next_gen(task))
                and self.mark_failed(task, len(gens), max(gens))]

    def _claimed(self, task: str, gen: int) -> bool:
        return self.has(names.file_name(task, names.CLAIM, gen))

    def last_error(self, task: str, gens: Sequence[int]) -> str:
        """The one-line error of ``task``'s latest error record."""
        if not gens:
            return "unknown error"
        return error_line(self.read(names.file_name(task, names.ERR, max(gens))))

    # -- breaking a stale claim: the one procedure ------------------------------
    def break_claim(self, task: str, gen: int, silent_secs: float, broken_by: str,
                    max_attempts: Optional[int], won: Optional[Claim] = None,
                    note: str = "") -> Tuple[str, bool]:
        """Record that attempt ``gen`` lost its lease and fence its holder.

        The caller has already won the next generation of ``task``, ``won``
        (that is what makes a break exclusive: a judge acting on an older
        listing tries the same name or an older one and loses); if the break
        fails (EIO...), ``won`` is given back.  Then: a record of the break
        renamed over the stale claim (the name never goes missing, and its
        holder's next look finds another inode and never publishes), and the
        lost attempt's error record (naming its holder, from the claim's record).

        Returns:
            (the error text, True if the task used up its attempts and is marked failed).
        """
        with given_back_on_error(won):
            return self._break(task, gen, silent_secs, broken_by, max_attempts, note)

    def _break(self, task: str, gen: int, silent_secs: float, broken_by: str,
               max_attempts: Optional[int], note: str) -> Tuple[str, bool]:
        name = names.file_name(task, names.CLAIM, gen)
        owner = parse_record(self.read(name))
        error = f"lease expired: claim {name} not refreshed for {silent_secs:.1f} s ({who(owner)})"
        self._end_attempt(task, gen, owner, broken_by, error + (f" ({note})" if note else ""))
        if max_attempts is None:  # fsmw requeue: the workers judge the limit
            return error, False
        attempts = self.count_errors(task, gen)
        exhausted = attempts >= max_attempts
        if exhausted:
            self.mark_failed(task, attempts, gen)
        return error, exhausted

    def _end_attempt(self, task: str, gen: int, owner: Mapping[str, str], broken_by: str,
                     error: str) -> None:
        """Fence the holder of attempt ``gen``, then record the attempt as ended by ``broken_by``.

        Fencing comes first, and a record that cannot be written (ENOSPC,
        EIO) is logged, not raised: the fenced attempt then has no error
        record (one attempt fewer is counted), never a record while its
        holder can still publish, and the breaker goes on with the task.
        """
        facts = dict(task=task, attempt=gen, **{k: owner.get(k, "?") for k in
                                                 ("host", "pid", "worker_id", "job_id", "started")},
                     broken_by=broken_by, error=error)
        fence(self.file(task, names.CLAIM, gen), format_record(dict(broken_by=broken_by, error=error)),
              self.fs)
        try:
            write_new(self.file(task, names.ERR, gen), format_record(facts), fs=self.fs)
        except OSError as exc:  # the holder is fenced, which is what matters; the record is a tally
            log.warning("attempt %s of task %s ended, but its record could not be written: %s",
                        gen, task, exc)

    # -- closing -------------------------------------------------------------------
    def end_live_attempts(self, closed_by: str) -> Tuple[RoundView, List[str]]:
        """End every attempt still live on a task without a result (the round was closed).

        Ending an attempt fences its holder (see ``break_claim``), so a late
        result of a closed round is discarded as ``.dup``, never published
        as ``.out``.

        Returns:
            (the shard's listing, taken after CLOSED; the tasks whose attempts were ended).
        """
        view = self.scan()
        ended = []
        for task, gens in view.claims.items():
            if task in view.outputs:
                continue
            for gen in [g for g in gens if g not in view.errors.get(task, ())]:
                owner = parse_record(self.read(names.file_name(task, names.CLAIM, gen)))
                self._end_attempt(task, gen, owner, closed_by,
                                  f"the round was closed while attempt {gen} ran ({who(owner)})")
                ended.append(task)
        return view, ended

    # -- repairs -----------------------------------------------------------------
    def set_aside(self, task: str, kind: str, gen: Optional[int]) -> None:
        """Rename a used record to ``<name>.requeued`` (kept for reading, no longer counted)."""
        old = self.file(task, kind, gen)
        try:
            self.fs.rename(old, old + ".requeued")
        except FileNotFoundError:
            pass


@contextmanager
def given_back_on_error(won: Optional[Claim]) -> Iterator[None]:
    """A takeover that fails after winning its generation (EIO...) gives it back.

    Otherwise the won claim would stay live, heartbeaten by nobody, until a
    judge broke it a lease later and counted it as a failed attempt.  If even
    the release fails, the lease decides.
    """
    try:
        yield
    except BaseException:
        try:
            if won is not None:
                won.release()
        except OSError:
            pass
        raise


def listdir(fs: FileSystem, path: PathLike) -> List[str]:
    """The names in ``path``; [] if it is gone; StoreError naming it on other errors."""
    try:
        return fs.listdir(path)
    except OSError as exc:
        if exc.errno in GONE:
            return []
        if exc.errno == errno.ENOTDIR:
            raise StoreError(f"cannot list {path}: it is not a directory") from exc
        raise StoreError(f"cannot list {path}: {exc.strerror}") from exc
