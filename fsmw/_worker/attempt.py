"""One attempt at one claimed task: process, publish or record the failure.

Protocol for an attempt holding claim ``<task>.claim.<g>``:
  1. the worker's keeper process (or heartbeat thread) keeps the claim alive while
     anything below runs;
  2. ``process_file(input, output)`` writes ``output``, a fresh temp name in
     the round directory (or in private local scratch with ``use_tmp``);
  3. the output is fsynced where that protects anything (see ``_core.fsinfo``;
     copied into a store temp first if it was on scratch); if the claim is
     still ours (fencing: the round directory is revalidated, then one
     ``stat``; a holder whose claim was broken does not publish) and the
     round has no ``CLOSED``, it is published with ``link`` onto
     ``<task>.out``; if a result is already there, the claim was lost or the
     round closed, this one is discarded and a ``.dup`` record says so;
  4. an exception in 2 or 3 leaves ``<task>.err.<g>`` with the traceback
     (``SystemExit`` and other BaseExceptions too, which then end the worker),
     host, worker, attempt and duration, and marks the task failed once
     ``max_attempts`` attempts have failed;
  5. the claim file is kept as the record of generation ``g`` (see
     ``_core.claims``); only an interrupted attempt removes it (if still ours), so
     the task is free for others at once;
  6. if the keeper's nudge finds the result no longer needed while
     ``process_file`` runs (fenced, published by another, STOP with
     ``on_stop="interrupt"``), the attempt is abandoned as ``abandon`` says:
     a ``.dup`` record, or the claim given back; the worker goes on.

Property: whatever happens, at most one ``.out`` exists per task (``link``
never replaces a name), it is complete, and a claim broken by someone else is
never removed by its old holder.  Fencing is check-then-act: a holder frozen
(SIGSTOP, a hung node) between its check and its ``link`` may still publish
on a claim broken meanwhile; its result is then the task's one result, and
the new holder's becomes the ``.dup`` (the simulation's ``fence-race``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import traceback
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Optional, Union

from .._core import layout as names
from .._core.atomic import fsync_path, temp_path, unlink_quietly
from .._core.claims import Claim
from .._core.errors import FsmwError
from .._core.paths import as_path
from .._core.shard import Shard
from .._core.system import O_READ, REAL_FS, Clock
from .._options import Options
from .._core.heartbeat import Heartbeat
from .abandon import abandon, why_not_needed
from .keeper import Keeper
from .stopping import StopSwitch, TaskAbandoned, WorkerInterrupted


def scratch_parent(options: Options) -> Optional[str]:
    """Where ``use_tmp`` makes its scratch directory (None without ``use_tmp``).

    Raises:
        ValueError: naming ``tmp_folder`` if it is not a writable directory.
    """
    if not options.use_tmp:
        return None
    folder = options.tmp_folder or tempfile.gettempdir()
    what = ("does not exist" if not os.path.exists(folder) else "is not a directory"
            if not os.path.isdir(folder) else None if os.access(folder, os.W_OK | os.X_OK)
            else "is not writable by this user")
    if what:
        raise ValueError(f"tmp_folder {folder} {what} (use_tmp makes a private scratch directory there)")
    return folder


@contextmanager
def scratch_dir(options: Options) -> Iterator[Optional[Path]]:
    """A private local scratch directory for ``use_tmp`` (None without it), removed after."""
    folder = scratch_parent(options)
    if folder is None:
        yield None
        return
    path = Path(tempfile.mkdtemp(prefix="fsmw-worker-", dir=folder))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _copy_out(round_dir: Shard, source: str, local: str) -> None:
    """Copy a store file (read through the store's fs) to a local scratch file."""
    fs = round_dir.fs
    fd = fs.open(source, O_READ | os.O_NONBLOCK)  # a FIFO put there reads as empty, never blocks
    try:
        with open(local, "wb") as out:
            for chunk in iter(lambda: fs.read(fd, 1 << 20), b""):
                out.write(chunk)
    finally:
        fs.close(fd)


class OutputMissing(Exception):
    """``process_file`` returned without writing its output file."""


class Outcome(Enum):
    PUBLISHED = "published"
    DUPLICATE = "duplicate"
    FAILED_ATTEMPT = "failed"
    ABANDONED = "abandoned"  # a .dup record says why (see abandon)
    GIVEN_BACK = "given back"  # STOP with on_stop="interrupt": the claim was released


ProcessFile = Callable[[Path, Path], None]


class Attempt:
    """Runs attempts for one worker; see the module docstring for the steps.

    Args:
        process_file: the user's hook, run under ``stop`` (a stop request
            raises WorkerInterrupted inside it).
    """

    def __init__(self, options: Options, facts: Mapping[str, object], log: Any,
                 process_file: ProcessFile, stop: StopSwitch, scratch: Optional[Path],
                 heartbeat: Union[Heartbeat, Keeper], fsync: bool, clock: Clock,
                 stop_file: Optional[str], shared: bool = True) -> None:
        self._options = options
        self._facts = facts
        self._log = log
        self._process_file = process_file
        self._stop = stop
        self._scratch = scratch
        self._heartbeat = heartbeat
        self._fsync = fsync
        self._shared = shared  # a shared file system: revalidate the directory before the fence check
        self._clock = clock
        self._stop_file = stop_file  # None unless on_stop == "interrupt"

    def run(self, round_dir: Shard, claim: Claim) -> Outcome:
        """Run ``claim``'s task; raises WorkerInterrupted after releasing the claim."""
        started = self._clock.now()
        out_tmp = temp_path(self._scratch or round_dir.path)
        local_in: Optional[str] = None
        self._heartbeat.hold(claim)
        outcome: Optional[Outcome] = None
        try:
            source = round_dir.file(claim.task, names.IN)
            if self._scratch is not None:
                local_in = temp_path(self._scratch)
                _copy_out(round_dir, source, local_in)
            self._stop.run_abortable(self._process_file, as_path(local_in or source), as_path(out_tmp),
                                     check=lambda: why_not_needed(round_dir, claim, self._stop_file))
            outcome = self._publish(round_dir, claim, out_tmp)
            return outcome
        except TaskAbandoned as left:
            self._log.info("task %s: %s; leaving it", claim.task, left.why)
            gave_back = abandon(round_dir, claim, left.why, self._facts)
            return Outcome.GIVEN_BACK if gave_back else Outcome.ABANDONED
        except WorkerInterrupted:
            self._log.info("interrupted: releasing task %s", claim.task)
            claim.release()
            raise
        except Exception as exc:  # the user's code failed: record it, keep the worker
            body = traceback.format_exc()
            self._record_failure(round_dir, claim, exc, body, self._clock.now() - started)
            return Outcome.FAILED_ATTEMPT
        except BaseException as exc:  # SystemExit and the like: record the attempt, then let it end us
            body = traceback.format_exc()
            self._record_failure(round_dir, claim, exc, body, self._clock.now() - started)
            raise
        finally:
            self._heartbeat.hold(None)
            if outcome is None or self._scratch is not None:  # else publishing removed it
                unlink_quietly(out_tmp, round_dir.fs if self._scratch is None else REAL_FS)
            if local_in is not None:
                unlink_quietly(local_in)
            claim.close()

    def _publish(self, round_dir: Shard, claim: Claim, out_tmp: str) -> Outcome:
        # No stat first: opening the output (to flush or copy it) or linking it
        # fails with ENOENT if process_file wrote nothing, or if the master closed
        # the round and swept its temps while we were late.
        try:
            store_tmp = self._flush(round_dir, out_tmp)
        except FileNotFoundError:
            return self._output_gone(round_dir, claim, out_tmp)
        if not claim.still_mine(fresh=self._shared):
            # Fencing: our claim was broken (we hung or were cut off) and the task
            # belongs to someone else now; never publish on a lost claim.
            unlink_quietly(store_tmp, round_dir.fs)
            return self._discard(round_dir, claim, "our claim was broken meanwhile")
        if round_dir.round_closed():
            # Closed means closed: a claim won in the second before this worker
            # looked at CLOSED was in no listing the closing master fenced.
            unlink_quietly(store_tmp, round_dir.fs)
            return self._discard(round_dir, claim, "the round was closed")
        try:
            won = round_dir.publish_output(store_tmp, claim.task, local=not self._shared)
        except FileNotFoundError:
            return self._output_gone(round_dir, claim, out_tmp)
        if won:
            return Outcome.PUBLISHED
        return self._discard(round_dir, claim, "a result was already published")

    def _flush(self, round_dir: Shard, out_tmp: str) -> str:
        """The output as a complete temp file in the round directory."""
        if self._scratch is not None:
            with open(out_tmp, "rb") as f:
                return round_dir.temp(f.read(), self._fsync)
        if self._fsync:
            fsync_path(out_tmp, round_dir.fs)
        return out_tmp

    def _output_gone(self, round_dir: Shard, claim: Claim, out_tmp: str) -> Outcome:
        if round_dir.round_closed():
            return self._discard(round_dir, claim, "the round was closed")
        raise OutputMissing(f"process_file returned without writing output_path {out_tmp}")

    def _discard(self, round_dir: Shard, claim: Claim, why: str) -> Outcome:
        self._log.info("task %s: %s; our result is discarded", claim.task, why)
        round_dir.write_duplicate(claim.task, dict(self._facts, attempt=claim.gen, reason=why))
        return Outcome.DUPLICATE

    def _give_back(self, claim: Claim, failed: OSError) -> None:
        """Our own record cannot be written (ENOSPC, EIO...): release the claim now rather
        than leave it live until a judge breaks it a lease later; if even that fails, end."""
        self._log.warning("cannot record the failed attempt of task %s (%s): giving it back",
                          claim.task, failed)
        try:
            claim.release()
        except OSError as again:
            raise FsmwError(f"cannot record the failed attempt {claim.name} ({failed}) nor give "
                            f"it back ({again}); exiting: its lease decides") from again

    def _record_failure(self, round_dir: Shard, claim: Claim, exc: BaseException, body: str,
                        duration: float) -> None:
        error = f"{type(exc).__name__}: {exc}".replace("\n", " ")
        facts = dict(task=claim.task, attempt=claim.gen, **self._facts,
                     duration_secs=f"{duration:.3f}", error=error)
        facts.update(getattr(exc, "fsmw_record", None) or {})  # e.g. a call's sealed exception
        body, error = getattr(exc, "fsmw_body", None) or body, str(facts["error"])
        limit = self._options.max_attempts
        try:
            attempts, marked = round_dir.record_failure(claim.task, claim.gen, facts, body, limit)
        except OSError as failed:
            self._give_back(claim, failed)
            raise
        self._log.warning("task %s attempt %d failed (%d of %d): %s", claim.task, claim.gen,
                          attempts, limit, error)
        if marked:
            self._log.error("task %s failed %d times; marked failed", claim.task, attempts)
