"""Tuning options of Master and Worker, validated in one place.

Defaults are chosen for real clusters: NFS clients may cache attributes for up
to 60 s (``acregmax``), so a lease must be well above that and the heartbeat
(every ``lease_secs / 5``) well below it; idle polls back off to a pause drawn
uniformly from 0 to 10 s, so a hundred idle workers make about twenty listings
a second between them.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, fields
from typing import Any, Mapping, Optional


ON_STOP = ("interrupt", "finish")


@dataclass(frozen=True)
class Options:
    """All tuning options; each constructor uses the ones that concern it.

    Attributes:
        lease_secs: a claim whose heartbeat has not moved for this long (seconds,
            on the judge's own clock) is stale and may be broken.
        max_attempts: failed attempts (exceptions or lost leases) before a task
            is marked failed.
        process_secs: expected run time of one task in seconds, for straggler
            backups; ``None`` means three times the median run time seen, or
            ``lease_secs`` before a worker has done a task.
        lockfile_timeout_threshold: fraction of the round still unfinished below
            which workers start backup copies of overdue tasks (also when no
            task of the round is left to start; 0 disables).
        master_idle_sleep_secs: longest pause, in seconds, between the master's
            polls of a running round.
        worker_idle_sleep_secs: longest pause, in seconds, between an idle
            worker's polls (the pause backs off with jitter up to this).
        worker_max_idle_secs: a worker with no work for this many seconds exits.
        take_lockfile_existence_as_lock: if True, a claim file counts as held
            until its lease expires; if False, a claim whose fcntl lock is free
            is taken as abandoned at once (only safe where fcntl locks are
            cluster-wide, i.e. not NFS mounted with ``nolock``).
        use_tmp: run ``process_file`` on local scratch copies, then publish the
            output into the store (still atomically).
        tmp_folder: where the private scratch directory is made for ``use_tmp``
            (default: ``$TMPDIR``, else ``/tmp``).
        fsync: flush every input and output to stable storage before publishing;
            None (the default) does so on shared file systems only and, on a
            local one, flushes the store once per round instead (see ``fsmw._core.fsinfo``).
        progress: the master's progress output on stderr: None or True (default
            None) draws a bar on a terminal and writes a line every
            ``progress_secs`` otherwise; False writes nothing.
        progress_secs: seconds between progress lines when stderr is not a terminal.
        walltime_secs: seconds this worker may run (its allocation); it does not
            start a task it cannot expect to finish in the time left.  Under
            Slurm the job's remaining time is used when this is None.
        on_stop: what a worker does with a running task once ``STOP`` appears
            (``fsmw stop``, or the master's end of the run): ``"interrupt"``
            (default) interrupts it within ``lease_secs / 5`` as SIGTERM would,
            gives its claim back and exits; ``"finish"`` lets it finish and
            publish, then exits.  Either way nothing new starts.
        abandon_open_round: what a master does with a round an earlier master
            left open (it crashed, or ``process_output_files`` raised): False
            (the default) resumes it if ``create_input_files()`` yields its
            tasks again (the same names and bytes), and fails with a
            StoreError naming the differences otherwise; True closes it as
            abandoned and starts a new round.
    """

    lease_secs: float = 120.0
    max_attempts: int = 3
    process_secs: Optional[float] = None
    lockfile_timeout_threshold: float = 0.05
    master_idle_sleep_secs: float = 5.0
    worker_idle_sleep_secs: float = 10.0
    worker_max_idle_secs: float = 1800.0
    take_lockfile_existence_as_lock: bool = True
    use_tmp: bool = False
    tmp_folder: Optional[str] = None
    fsync: Optional[bool] = None
    progress: Optional[bool] = None
    progress_secs: float = 60.0
    walltime_secs: Optional[float] = None
    on_stop: str = "interrupt"
    abandon_open_round: bool = False
    shard_size: int = 1000

    def __post_init__(self) -> None:
        for name in ("lease_secs", "master_idle_sleep_secs", "worker_idle_sleep_secs",
                     "worker_max_idle_secs", "progress_secs"):
            _require(name, getattr(self, name), lambda v: v > 0, "a positive number of seconds")
        if self.walltime_secs is not None:
            _require("walltime_secs", self.walltime_secs, lambda v: v > 0,
                     "a positive number of seconds or None")
        if self.process_secs is not None:
            _require("process_secs", self.process_secs, lambda v: v > 0,
                     "a positive number of seconds or None")
        _require("lockfile_timeout_threshold", self.lockfile_timeout_threshold,
                 lambda v: 0 <= v <= 1, "a fraction between 0 and 1")
        if self.on_stop not in ON_STOP:
            raise ValueError(f"on_stop must be one of {', '.join(ON_STOP)}, not {self.on_stop!r}")
        for name in ("max_attempts", "shard_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, not {value!r}")

    @property
    def heartbeat_secs(self) -> float:
        return self.lease_secs / 5.0

    @classmethod
    def names(cls) -> tuple:
        return tuple(f.name for f in fields(cls))


def make_options(options: Optional[Options], overrides: Mapping[str, Any]) -> Options:
    """The options a Master or Worker runs with: ``options`` (or the defaults), then ``overrides``.

    Raises:
        TypeError: ``options`` is not an Options, or an override is not an option.
        ValueError: a value is out of range (see :class:`Options`).
    """
    if options is None:
        return Options(**overrides)
    if not isinstance(options, Options):
        raise TypeError(f"options must be an fsmw.Options, not {type(options).__name__}")
    return dataclasses.replace(options, **overrides) if overrides else options


def _require(name: str, value: object, ok, what: str) -> None:
    good = isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value) and ok(value)
    if not good:
        raise ValueError(f"{name} must be {what}, not {value!r}")
