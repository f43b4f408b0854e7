"""The attempt journal: what each worker did, for ``fsmw status`` and ``fsmw report``.

A claim file does not say how its attempt ended or how long it took, so a
worker also appends one JSON line per attempt to its own journal
``round-k/.journal.<host>.<pid>.<hex>``::

    {"task": "n7", "attempt": 1, "kind": "claim", "outcome": "published",
     "worker_id": 2, "host": "node3", "pid": 4242, "job_id": "slurm:77_2",
     "claimed": 1764069122.31, "ended": 1764069125.02}

``kind`` is ``claim`` (a pending task), ``break`` (taken over from a stale
claim) or ``backup`` (a straggler's backup copy); ``outcome`` is
``published``, ``duplicate``, ``failed`` or ``interrupted``.  Times are the
worker's own wall clock (seconds since the epoch), so a report shows each
worker's bars exactly, and across hosts only as exactly as their clocks agree.

A line is written at once unless the last write was less than ``FLUSH_SECS``
ago; then it waits for the next line after that (or for the worker to go
idle, leave the round or exit).  Bursts of short tasks thus cost one
``write`` per burst, and a worker that is killed loses at most the lines of
its last ``FLUSH_SECS``.

Property: one file per worker and round, created once and only appended to by
its single writer, so journaling adds no metadata operation per task (and
less than one ``write`` per task), and a reader never sees another writer's
half line (a torn last line of a crashed writer is skipped by
:func:`read_journals`).
"""

from __future__ import annotations

import json
from typing import Dict, Iterator, List, Optional

from .atomic import read_small
from .layout import JOURNAL_PREFIX, is_journal, private_name
from .owner import safe_host
from .rounddir import RoundDir
from .shard import Shard
from .system import O_APPEND_NEW, REAL_CLOCK, REAL_FS, Clock, FileSystem, token_hex

FLUSH_SECS = 0.05
MAX_JOURNAL_BYTES = 1 << 30


class Journal:
    """Appends attempt lines for one worker; opens one file per round lazily."""

    def __init__(self, facts: Dict[str, object], fs: FileSystem = REAL_FS, clock: Clock = REAL_CLOCK) -> None:
        # The constant part of every line, rendered once.
        self._facts = json.dumps({k: facts.get(k) for k in ("worker_id", "host", "pid", "job_id")},
                                 separators=(",", ":"))[1:-1]
        self._fd = -1
        self._dir: Optional[str] = None  # the round directory of the journal being written
        self._fs, self._clock = fs, clock
        self._lines: List[bytes] = []
        self._flushed = float("-inf")

    def record(self, shard: Shard, task: str, attempt: int, kind: str, outcome: str,
               claimed: float, ended: float) -> None:
        if shard.round_path != self._dir:
            self.close()
            self._dir = shard.round_path
        line = (f'{{"task":{json.dumps(task)},"attempt":{attempt:d},"kind":"{kind}",'
                f'"outcome":"{outcome}",{self._facts},"claimed":{claimed:.3f},"ended":{ended:.3f}}}\n')
        self._lines.append(line.encode("utf-8"))
        if self._clock.now() - self._flushed >= FLUSH_SECS:
            self.flush()

    def flush(self) -> None:
        if not self._lines or self._dir is None:
            return
        data, self._lines = b"".join(self._lines), []
        self._flushed = self._clock.now()
        fs = self._fs
        try:
            if self._fd < 0:
                name = private_name(JOURNAL_PREFIX, safe_host(fs), fs.getpid(), token_hex(fs=fs))
                self._fd = fs.open(f"{self._dir}/{name}", O_APPEND_NEW, 0o666)
            fs.write(self._fd, data)
        except OSError:
            self._close_fd()  # the journal is informative only: never fail a task for it

    def close(self) -> None:
        self.flush()
        self._close_fd()
        self._dir = None

    def _close_fd(self) -> None:
        if self._fd >= 0:
            self._fs.close(self._fd)
        self._fd = -1


def read_journals(round_dir: RoundDir, entries: List[str]) -> Iterator[dict]:
    """Every complete attempt line of every journal among ``entries`` of ``round_dir``."""
    for name in entries:
        if not is_journal(name):
            continue
        data = read_small(round_dir.join(name), MAX_JOURNAL_BYTES, round_dir.fs, missing_ok=False)
        for line in (data or b"").decode("utf-8", errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except (ValueError, RecursionError):
                continue  # the last line of a writer that died mid-write, or garbage
            if isinstance(entry, dict):
                yield entry
