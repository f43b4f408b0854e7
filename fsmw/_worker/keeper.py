"""The worker's side of its keeper: a helper process that heartbeats while the worker lives.

A heartbeat *thread* needs the GIL, and ``process_file`` may spend longer
than a lease inside one C call that holds it; the live claim would then be
broken (issue 11, item 7).  So a worker run with the real clock and file
system starts one keeper process per :meth:`Worker.run` (lazily, at its first
claim): ``fsmw._worker.keeper_main`` run by ``sys.executable -I -S``, with a
pipe on its stdin.  The worker writes one short line per change of the claim
it holds (see
``keeper_main`` for the protocol and what the keeper does); the keeper needs
nothing else from it.  The write end of the pipe belongs to the worker
process alone (close-on-exec, and closed in children forked without exec),
so the keeper sees EOF exactly when the worker process is gone, however it
ended: "while the worker lives" holds by construction.

:class:`Keeper` has the interface of :class:`fsmw._core.heartbeat.Heartbeat`
(``hold``/``close``), which stays the implementation under a simulated clock
or file system.  If the keeper cannot be started, or dies, the worker logs it
and falls back to the heartbeat thread.

Property: while the worker holds a claim and its keeper runs, the keeper
knows which claim (the pipe delivers every line before its EOF).
"""

from __future__ import annotations

import fcntl
import logging
import marshal
import os
import subprocess
import sys
import time
import weakref
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple

from .._core import layout as names
from .._core.claims import Claim
from .._core.heartbeat import Heartbeat
from .._core.shard import LEGACY
from .._options import Options

_ALIVE: "weakref.WeakSet[Keeper]" = weakref.WeakSet()
# The keeper's start: isolated (-I: neither the working directory nor PYTHON* variables
# can put another fsmw first), no site (-S), and this very fsmw package (argv[1]) without
# its __init__ (Master and the rest are not needed): about 60 ms of CPU instead of 85.
_BOOT = ("import sys, types; fsmw = types.ModuleType('fsmw'); fsmw.__path__ = [sys.argv[1]]; "
         "sys.modules['fsmw'] = fsmw; from fsmw._worker.keeper_main import main; "
         "sys.exit(main(sys.argv[1:]))")


def _forget_all_in_child() -> None:
    """A child forked without exec must not keep its parent's keeper alive."""
    for keeper in list(_ALIVE):
        keeper._forget()


os.register_at_fork(after_in_child=_forget_all_in_child)


class Keeper:
    """Keeps claims alive from a helper process (see the module docstring).

    Args:
        config: what the keeper process needs (``keeper_main.Config``'s fields).
        fallback: the heartbeat thread used if no keeper process can run.
        log: the worker's logger.
    """

    def __init__(self, config: Dict[str, Any], fallback: Heartbeat, log: Any) -> None:
        self._config = marshal.dumps(config).hex()  # the same interpreter reads it; no json import
        self._fallback = fallback
        self._log = log
        self._proc: Optional[subprocess.Popen] = None
        self._fd = -1
        self._holding = False
        self._failed = False
        self._where = ("", "")  # (a claim's directory, "<round> <shard>" for the keeper's lines)

    @classmethod
    def for_worker(cls, options: Options, store_root: Path, facts: Mapping[str, object], signals: bool,
                   fallback: Heartbeat, log: Any) -> "Keeper":
        """The keeper of a worker running with ``options`` on the store at ``store_root``.

        Args:
            signals: whether the worker handles the nudge (its ``run()`` is in the main thread);
                if not, the keeper never signals it.
        """
        config = dict(store=str(store_root), pid=os.getpid(), interval=options.heartbeat_secs,
                      grace=options.lease_secs, signals=signals, watch_stop=options.on_stop == "interrupt",
                      max_attempts=options.max_attempts, facts=dict(facts),
                      log_level=logging.getLogger("fsmw").getEffectiveLevel())
        return cls(config, fallback, log)

    def hold(self, claim: Optional[Claim]) -> None:
        """Keep ``claim`` alive from now on (None: nothing to keep alive)."""
        if self._failed:
            self._fallback.hold(claim)
            return
        if claim is None:
            if self._holding:
                self._holding = False
                self._send(b"d\n", None)
            return
        where = claim.path.rpartition("/")[0]
        if where != self._where[0]:  # a new shard: parse its path once, not per task
            self._where = (where, "%d %d" % _round_and_shard(claim.path))
        since = time.monotonic()
        line = f"h {self._where[1]} {claim.gen} {claim.ino} {since:.3f} {claim.task}\n".encode()
        self._holding = True
        self._send(line, claim)

    def close(self) -> None:
        """The worker is done: close the pipe (the keeper exits at EOF) and reap the keeper."""
        self._fallback.close()
        self._reap(10.0)
        _ALIVE.discard(self)

    def _reap(self, timeout: float) -> None:
        """Close our end of the pipe and wait for the keeper to exit (kill it after ``timeout``)."""
        proc, self._proc = self._proc, None
        self._close_pipe()
        if proc is not None:
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._log.warning("keeper process %d did not exit; killing it", proc.pid)
                proc.kill()
                proc.wait()

    @property
    def pid(self) -> Optional[int]:
        return self._proc.pid if self._proc is not None else None

    def _send(self, line: bytes, claim: Optional[Claim]) -> None:
        for _ in range(2):  # a keeper that died is restarted once
            if self._proc is None and not self._start():
                break
            try:
                os.write(self._fd, line)
                return
            except OSError as exc:  # EPIPE: the keeper died (killed from outside?)
                self._log.warning("keeper process %s is gone (%s); starting another", self.pid, exc)
                self._reap(1.0)
        self._failed = True
        self._log.warning("no keeper process: heartbeats come from a thread, which a C call holding "
                          "the GIL can starve")
        self._fallback.hold(claim)

    def _start(self) -> bool:
        argv = [sys.executable, "-I", "-S", "-c", _BOOT, str(Path(__file__).resolve().parents[1]),
                self._config]
        started = time.monotonic()
        try:
            self._proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                          close_fds=True)
        except (OSError, ValueError) as exc:
            self._log.warning("cannot start a keeper process (%s %s): %s", sys.executable, argv[1:3], exc)
            return False
        assert self._proc.stdin is not None
        self._fd = os.dup(self._proc.stdin.fileno())  # unbuffered writes; dup is close-on-exec
        self._proc.stdin.close()
        _widen(self._fd)
        _ALIVE.add(self)
        self._log.debug("keeper process %d started in %.1f ms", self._proc.pid,
                        1e3 * (time.monotonic() - started))
        return True

    def _close_pipe(self) -> None:
        if self._fd >= 0:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = -1

    def _forget(self) -> None:
        """In a forked child: close our copy of the pipe, never wait for the keeper."""
        self._close_pipe()
        self._proc = None
        self._failed = True


def _round_and_shard(claim_path: str) -> Tuple[int, int]:
    """The round number and shard index a claim's path names (``LEGACY`` for a round before shards)."""
    parts = claim_path.rsplit("/", 3)
    shard = names.shard_index(parts[-2])
    if shard is None:
        return names.round_number(parts[-2]) or 0, LEGACY
    return names.round_number(parts[-3]) or 0, shard


PIPE_BYTES = 1 << 20  # Linux's default limit for an unprivileged process (pipe-max-size)
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)


def _widen(fd: int) -> None:
    """Give the keeper's pipe room for PIPE_BYTES (Linux; best effort).

    The keeper reads its pipe in batches (``keeper_main.BATCH_SECS`` apart); a
    worker running thousands of tasks a second writes about 50 KB meanwhile,
    and a full 64 KiB pipe would stop it until the keeper reads (measured: 19 us
    per task instead of 3).
    """
    try:
        fcntl.fcntl(fd, F_SETPIPE_SZ, PIPE_BYTES)
    except OSError:
        pass
