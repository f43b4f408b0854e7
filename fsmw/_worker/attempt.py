"""One attempt at one claimed task: process, publish or record the failure.

Protocol for an attempt holding claim ``<task>.claim.<g>``:
  1. the worker's heartbeat thread keeps the claim alive while anything below runs;
  2. ``process_file(input, output)`` writes ``output``, a fresh temp name in
     the round directory (or in private local scratch with ``use_tmp``);
  3. the output is fsynced where that protects anything (see ``_fsinfo``;
     copied into a store temp first if it was on scratch); if the claim is
     still ours (fencing: a holder whose claim was broken never publishes)
     it is published with ``link`` onto
     ``<task>.out``; if a result is already there, or the claim was lost, this
     one is discarded and a ``.dup`` record says so;
  4. an exception in 2 or 3 leaves ``<task>.err.<g>`` with the traceback,
     host, worker, attempt and duration, and marks the task failed once
     ``max_attempts`` attempts have failed;
  5. the claim file is kept as the record of generation ``g`` (see
     ``_claims``); only an interrupted attempt removes it (if still ours), so
     the task is free for others at once.

Property: whatever happens, at most one ``.out`` exists per task, it is
complete, it was published by a holder whose claim was live at that moment,
and a claim broken by someone else is never removed by its old holder.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from contextlib import contextmanager
import traceback
from enum import Enum
from pathlib import Path
from typing import Callable, Dict, Iterator, Optional, Union

from .._core import layout as names
from .._core.atomic import fsync_path, publish, temp_path, unlink_quietly, write_temp
from .._core.claims import Claim, read_text
from .heartbeat import Heartbeat
from .._options import Options
from .._core.records import count_errors, write_duplicate, write_error, write_failed
from .stopping import WorkerInterrupted


@contextmanager
def scratch_dir(options: Options) -> Iterator[Optional[Path]]:
    """A private local scratch directory for ``use_tmp`` (None without it), removed after."""
    if not options.use_tmp:
        yield None
        return
    path = Path(tempfile.mkdtemp(prefix="fsmw-worker-", dir=options.tmp_folder))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


class OutputMissing(Exception):
    """``process_file`` returned without writing its output file."""


class Outcome(Enum):
    PUBLISHED = "published"
    DUPLICATE = "duplicate"
    FAILED_ATTEMPT = "failed"


UserCall = Callable[[Path, Path], None]


class Attempt:
    """Runs attempts for one worker; see the module docstring for the steps."""

    def __init__(self, options: Options, facts: Dict[str, object], log: logging.LoggerAdapter,
                 call: UserCall, scratch: Optional[Path], heartbeat: Heartbeat, fsync: bool) -> None:
        self._heartbeat = heartbeat
        self._fsync = fsync
        self._options = options
        self._facts = facts
        self._log = log
        self._call = call
        self._scratch = scratch

    def run(self, round_dir: Path, claim: Claim) -> Outcome:
        """Run ``claim``'s task; raises WorkerInterrupted after releasing the claim."""
        started = time.monotonic()
        out_tmp = temp_path(self._scratch or round_dir)
        local_in: Optional[Path] = None
        self._heartbeat.hold(claim)
        outcome: Optional[Outcome] = None
        try:
            source = round_dir / names.file_name(claim.task, names.IN)
            if self._scratch is not None:
                local_in = temp_path(self._scratch)
                shutil.copyfile(source, local_in)
            self._call(local_in or source, out_tmp)
            outcome = self._publish(round_dir, claim, out_tmp)
            return outcome
        except WorkerInterrupted:
            self._log.info("interrupted: releasing task %s", claim.task)
            claim.release()
            raise
        except Exception as exc:  # the user's code failed: record it, keep the worker
            body = traceback.format_exc()
            self._record_failure(round_dir, claim, exc, body, time.monotonic() - started)
            return Outcome.FAILED_ATTEMPT
        finally:
            self._heartbeat.hold(None)
            if outcome is None or self._scratch is not None:  # else publishing removed it
                unlink_quietly(out_tmp)
            if local_in is not None:
                unlink_quietly(local_in)
            claim.close()

    def _publish(self, round_dir: Path, claim: Claim, out_tmp: Path) -> Outcome:
        # No stat first: opening the output (to flush or copy it) or linking it
        # fails with ENOENT if process_file wrote nothing, or if the master closed
        # the round and swept its temps while we were late.
        try:
            store_tmp = self._flush(round_dir, out_tmp)
        except FileNotFoundError:
            return self._output_gone(round_dir, claim, out_tmp)
        if not claim.still_mine():
            # Fencing: our claim was broken (we hung or were cut off) and the task
            # belongs to someone else now; never publish on a lost claim.
            unlink_quietly(store_tmp)
            return self._discard(round_dir, claim, "our claim was broken meanwhile")
        final = f"{round_dir}/{claim.task}.{names.OUT}"
        try:
            won = publish(store_tmp, final)
        except FileNotFoundError:
            return self._output_gone(round_dir, claim, out_tmp)
        if won:
            return Outcome.PUBLISHED
        return self._discard(round_dir, claim, "a result was already published")

    def _flush(self, round_dir: Path, out_tmp: Path) -> Union[str, Path]:
        """The output as a complete temp file in the round directory."""
        if self._scratch is not None:
            with open(out_tmp, "rb") as f:
                return write_temp(round_dir, f.read(), self._fsync)
        if self._fsync:
            fsync_path(out_tmp)
        return out_tmp

    def _output_gone(self, round_dir: Path, claim: Claim, out_tmp: Path) -> Outcome:
        if (round_dir / names.CLOSED).exists():
            return self._discard(round_dir, claim, "the round was closed")
        raise OutputMissing(f"process_file returned without writing output_path {out_tmp}")

    def _discard(self, round_dir: Path, claim: Claim, why: str) -> Outcome:
        self._log.info("task %s: %s; our result is discarded", claim.task, why)
        write_duplicate(round_dir, claim.task, dict(self._facts, attempt=claim.gen, reason=why))
        return Outcome.DUPLICATE

    def _record_failure(self, round_dir: Path, claim: Claim, exc: BaseException, body: str,
                        duration: float) -> None:
        error = f"{type(exc).__name__}: {exc}".replace("\n", " ")
        facts = dict(task=claim.task, attempt=claim.gen, **self._facts,
                     duration_secs=f"{duration:.3f}", error=error)
        path = write_error(round_dir, claim.task, claim.gen, facts, body)
        attempts = count_errors(round_dir, claim.task, int(path.name.rpartition(".")[2]))
        self._log.warning("task %s attempt %d failed (%d of %d): %s", claim.task, claim.gen,
                          attempts, self._options.max_attempts, error)
        if attempts >= self._options.max_attempts:
            if write_failed(round_dir, claim.task, attempts, read_text(path) or b""):
                self._log.error("task %s failed %d times; marked failed", claim.task, attempts)
