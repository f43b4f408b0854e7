"""The keeper process: keeps a worker's claim alive while the worker process lives.

Run by the worker (see ``keeper``; by hand: ``python -m
fsmw._worker.keeper_main CONFIG``: :class:`Config`'s fields, a dict in ``marshal``'s
format, in hex), with a
pipe on stdin that only the worker process writes to.  The worker writes one line per change:

    h <round> <shard> <gen> <ino> <since> <task>   it holds <task>.claim.<gen> of that round
                                           and shard, linked to inode <ino>, since <since>
                                           (time.monotonic)
    d                                      it holds no claim

EOF on stdin means that the worker process has exited, however it ended.

Every ``interval`` (lease_secs / 5) while a claim is held, the keeper:

1. does nothing if the worker is *stopped* (SIGSTOP: state T in
   ``/proc/<pid>/stat``; where /proc is missing it is taken as running): a
   frozen node is exactly what leases are for;
2. touches the claim as :meth:`Claim.touch` does: never a name that no longer
   points at the worker's inode (fencing), so it keeps nothing alive that a
   judge broke or the master closed;
3. asks whether the result is still needed (``abandon.why_not_needed``:
   fenced, ``<task>.out`` published by another, ``STOP`` with
   ``on_stop="interrupt"``: at most three ``stat`` calls).  If not, and the
   worker handles signals (its ``run()`` is in the main thread), it nudges it
   with SIGUSR2 (the worker checks for itself and leaves the task); if the
   worker still holds that claim ``grace`` seconds (lease_secs) after the first
   nudge, it is stuck in code that never returns to Python: SIGKILL.

At EOF with a claim held (the worker died in a task: SIGKILL, a crash,
``os._exit``, or our SIGKILL), unless the attempt already has its error
record, the keeper ends the attempt at once instead of a lease later:

* the result was not needed (or we killed the worker for that): as the worker
  would have, see ``abandon`` (no failed attempt);
* the keeper itself got SIGTERM, SIGINT, SIGHUP or SIGUSR1 (the scheduler
  ends the whole job): the claim is released, the task pending again;
* otherwise the attempt is recorded as failed (``RoundDir.record_failure``:
  "worker process <pid> died while running the task"), so it counts toward
  ``max_attempts``: a task that kills its worker every time ends up failed.

Then it exits.  Those signals never end the keeper; EOF does.

Property: the keeper touches a claim only while the worker process exists
and is not stopped, and only while the claim's name points at its inode.
"""

from __future__ import annotations

import marshal
import logging
import os
import select
import signal
import sys
import time
from typing import Any, Dict, List, Optional

from .._core import layout as names
from .._core.claims import Claim, asked_again
from .._core.shard import Shard
from .._core.rounddir import RoundDir
from .._core.system import O_READ, REAL_FS
from .abandon import abandon, why_not_needed

BATCH_SECS = 0.05  # after reading, wait this long before reading again: few wakeups per second
ENDING = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1)
log = logging.getLogger("fsmw.keeper")


class Config:
    """What the keeper is told (a plain class: ``dataclasses`` costs the keeper's start 4 ms)."""

    def __init__(self, store: str, pid: int, interval: float, grace: float, signals: bool,
                 watch_stop: bool, max_attempts: int, facts: Dict[str, Any],
                 log_level: int = logging.WARNING) -> None:
        self.store = store  # the store root
        self.pid = pid  # the worker process
        self.interval = interval  # seconds between heartbeats (lease_secs / 5)
        self.grace = grace  # seconds a nudged worker has to leave its task (lease_secs)
        self.signals = signals  # whether the worker handles SIGUSR2 (its run() is in the main thread)
        self.watch_stop = watch_stop  # on_stop == "interrupt"
        self.max_attempts = max_attempts
        self.facts = facts  # the worker's owner facts, for records
        self.log_level = log_level


class Held:
    """The claim the worker holds, as the keeper knows it."""

    def __init__(self, round_dir: Shard, task: str, gen: int, ino: int, since: float) -> None:
        self.round_dir, self.task, self.gen, self.ino = round_dir, task, gen, ino
        self.since = since
        self.nudged: Optional[float] = None
        self.warned = False

    def open(self) -> Claim:
        """A descriptor of our own on the claim's inode, for one use (the caller closes it).

        A fenced Claim if the name no longer points at the worker's inode.  Not
        kept open between uses: on NFS an open name that is removed (a released
        claim) would linger as ``.nfsXXXX``.
        """
        path = self.round_dir.file(self.task, names.CLAIM, self.gen)
        try:
            fd = asked_again(REAL_FS.open, path, O_READ)  # ESTALE is not "gone"
        except FileNotFoundError:
            fd = -1
        if fd >= 0 and REAL_FS.fstat(fd).st_ino != self.ino:
            REAL_FS.close(fd)
            fd = -1
        claim = Claim(path, self.ino, fd, self.task, self.gen, True)
        claim.fenced = fd < 0
        return claim


def worker_stopped(pid: int) -> bool:
    """Whether process ``pid`` is stopped (SIGSTOP, a debugger); False where /proc cannot tell."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return False
    return data[data.rfind(b")") + 2:][:1] in (b"T", b"t")


class KeeperLoop:
    """The keeper's state and its loop (see the module docstring)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        # STOP makes a result unneeded only with on_stop="interrupt" (the same rule as the worker's)
        self.stop_file = f"{config.store}/{names.STOP}" if config.watch_stop else None
        self.held: Optional[Held] = None
        self.killed_why: Optional[str] = None
        self.ending = False
        self._rest = b""

    def run(self, fd: int = 0) -> int:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        next_beat = time.monotonic() + self.config.interval
        while True:
            wait = max(0.0, next_beat - time.monotonic())
            if poller.poll(1e3 * wait):
                if not self._read(fd, poller):
                    return self._on_exit()
                time.sleep(BATCH_SECS)  # let lines gather: a wakeup per batch, not per task
            if time.monotonic() >= next_beat:
                next_beat = time.monotonic() + self.config.interval
                if not self._read(fd, poller):  # never signal a pid that may be gone
                    return self._on_exit()
                self._beat_safely()

    def _read(self, fd: int, poller: Any) -> bool:
        """Apply every line waiting in the pipe; False at EOF."""
        while poller.poll(0):
            data = os.read(fd, 1 << 16)
            if not data:
                return False
            lines = (self._rest + data).split(b"\n")
            self._rest = lines.pop()
            if lines:
                self._apply(lines[-1])  # each line replaces the state: the last one is the state
        return True

    def _apply(self, line: bytes) -> None:
        self.held = None
        if line.startswith(b"h "):
            _, number, shard, gen, ino, since, task = line.decode("utf-8", "surrogateescape").split(" ", 6)
            round_dir = RoundDir(f"{self.config.store}/{names.round_name(int(number))}", int(number), REAL_FS)
            self.held = Held(round_dir.shard(int(shard)), task, int(gen), int(ino),
                             float(since))

    def _beat_safely(self) -> None:
        try:
            self._beat()
        except OSError as exc:  # a flaky mount: keep trying, the lease decides
            log.warning("heartbeat failed: %s", exc)

    def _beat(self) -> None:
        held, pid = self.held, self.config.pid
        if held is None or worker_stopped(pid):
            return
        claim = held.open()
        try:
            if not claim.touch() and not held.warned:
                held.warned = True
                log.warning("claim %s is no longer ours (broken by another worker that saw no heartbeat "
                            "for lease_secs, or the round was closed); our result will be discarded",
                            claim.name)
            # A worker that cannot be signalled (not in its main thread) is never nudged.
            why = why_not_needed(held.round_dir, claim, self.stop_file) if self.config.signals else None
        finally:
            claim.close()
        if why is None:
            return
        now = time.monotonic()
        if held.nudged is None:
            held.nudged = now
            log.info("task %s: %s; interrupting worker process %d", held.task, why, pid)
        elif now - held.nudged >= self.config.grace:
            log.warning("worker process %d did not leave task %s within %.0f s (%s): killing it",
                        pid, held.task, self.config.grace, why)
            self.killed_why = why
            os.kill(pid, signal.SIGKILL)
            return
        os.kill(pid, signal.SIGUSR2)

    def _on_exit(self) -> int:
        """The worker process is gone: end the attempt it was in, if any."""
        held = self.held
        if held is None:
            return 0
        rd, pid = held.round_dir, self.config.pid
        if rd.has(names.file_name(held.task, names.ERR, held.gen)):
            return 0  # the worker (or a judge) recorded this attempt
        claim = held.open()
        try:
            why = self.killed_why or why_not_needed(rd, claim, self.stop_file)
            if why is not None:
                abandon(rd, claim, why, dict(self.config.facts, ended_by=f"keeper {os.getpid()}"))
                log.info("worker process %d is gone; task %s: %s", pid, held.task, why)
            elif self.ending:
                claim.release()
                log.warning("worker process %d ended with the job; task %s given back", pid, held.task)
            else:
                self._record_death(held, claim)
        finally:
            claim.close()
        return 0

    def _record_death(self, held: Held, claim: Claim) -> None:
        if not claim.still_mine():
            return  # broken meanwhile: the judge recorded it
        pid, limit = self.config.pid, self.config.max_attempts
        error = f"worker process {pid} died while running the task (claim {claim.name})"
        facts = dict(task=held.task, attempt=held.gen, **self.config.facts,
                     duration_secs=f"{time.monotonic() - held.since:.3f}", error=error,
                     recorded_by=f"keeper {os.getpid()}")
        body = ("The worker process exited (killed, crashed, or os._exit) while it held this claim;\n"
                "its keeper process recorded the attempt at once instead of a lease later.\n")
        attempts, marked = held.round_dir.record_failure(held.task, held.gen, facts, body, limit)
        log.warning("task %s attempt %d: %s (%d of %d failed attempts)%s", held.task, held.gen, error,
                    attempts, limit, "; marked failed" if marked else "")


def main(argv: List[str]) -> int:
    config = Config(**marshal.loads(bytes.fromhex(argv[1])))
    facts = config.facts
    logging.basicConfig(level=config.log_level, stream=sys.stderr,
                        format=f"%(asctime)s %(process)d %(levelname)s fsmw.keeper: keeper of worker "
                               f"{facts.get('worker_id')} (pid {config.pid}): %(message)s")
    keeper = KeeperLoop(config)

    def ending(signum: int, frame: object) -> None:
        keeper.ending = True  # the job ends: our worker will go too; we wait for its EOF

    for sig in ENDING:
        signal.signal(sig, ending)
    try:
        return keeper.run()
    except Exception:  # noqa: BLE001 - the keeper must say why it ends
        log.exception("keeper failed")
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
