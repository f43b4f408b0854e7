"""Command-line flags (python-gflags) of the example scripts, in one place.

Only scripts import this module: :class:`fsmw.Master` and :class:`fsmw.Worker`
take plain keyword arguments and never read global flags.  ``main`` functions
parse ``argv`` with :func:`parse` and turn the flags into keyword arguments
with :func:`master_options` and :func:`worker_options`.
"""

from __future__ import annotations

import logging
import sys
from typing import Dict, List, Optional

import gflags

from ._options import ON_STOP, Options

FLAGS = gflags.FLAGS
_D = Options()

gflags.DEFINE_string("store", "store", "Path of the store directory, on a file system that "
                     "the master and every worker share.")
gflags.DEFINE_integer("worker_id", None, "Number of this worker, for logs and claim records "
                      "(e.g. $(Process) under HTCondor, $SLURM_ARRAY_TASK_ID under Slurm).")
gflags.DEFINE_integer("num_problems", 100, "Number of integers the example master asks the "
                      "workers to factorize (tasks per round).")
gflags.DEFINE_integer("num_rounds", 1, "Number of rounds the example master runs.")
gflags.DEFINE_float("process_secs", _D.process_secs, "Expected seconds per task; idle workers "
                    "start a backup copy of a task running longer than this near the end of a "
                    "round. Default: three times the median task time seen (lease_secs before "
                    "the first task).")
gflags.DEFINE_float("lockfile_timeout_threshold", _D.lockfile_timeout_threshold,
                    "Fraction (0-1) of a round left unfinished below which workers may start "
                    "backup copies of overdue tasks (also once no task is left to start); 0 "
                    "disables backups.")
gflags.DEFINE_float("lease_secs", _D.lease_secs, "Seconds a claim's heartbeat may stand "
                    "still (as seen on the judging worker's own clock) before the claim is "
                    "broken and its task redone.")
gflags.DEFINE_integer("max_attempts", _D.max_attempts, "Failed attempts (count) after which a "
                      "task is marked failed instead of retried.")
gflags.DEFINE_float("master_idle_sleep_secs", _D.master_idle_sleep_secs, "Longest pause, in "
                    "seconds, between the master's checks of a running round.")
gflags.DEFINE_float("worker_idle_sleep_secs", _D.worker_idle_sleep_secs, "Longest pause, in "
                    "seconds, between an idle worker's polls (backs off with jitter).")
gflags.DEFINE_float("worker_max_idle_secs", _D.worker_max_idle_secs, "A worker that finds no "
                    "work for this many seconds exits with code 3.")
gflags.DEFINE_bool("take_lockfile_existence_as_lock", _D.take_lockfile_existence_as_lock,
                   "Whether a claim file counts as held until its lease expires. If false, a "
                   "claim whose fcntl lock is free is taken over at once (only where fcntl "
                   "locks work across nodes).")
gflags.DEFINE_bool("use_tmp", _D.use_tmp, "Whether workers process local scratch copies of "
                   "input and output (published into the store atomically afterwards).")
gflags.DEFINE_string("tmp_folder", _D.tmp_folder, "Directory in which each worker makes a "
                     "private scratch directory when --use_tmp is set. Default: $TMPDIR or /tmp.")
gflags.DEFINE_bool("fsync", _D.fsync, "Whether inputs and outputs are fsynced before they are "
                   "published. Unset: on shared file systems only (a local store is flushed "
                   "once per round instead).")
gflags.DEFINE_bool("progress", _D.progress, "Whether the master shows progress on stderr: "
                   "unset draws a bar on a terminal and a line every --progress_secs otherwise.")
gflags.DEFINE_float("progress_secs", _D.progress_secs, "Seconds between the master's progress "
                    "lines when stderr is not a terminal (a batch log).")
gflags.DEFINE_float("walltime_secs", _D.walltime_secs, "Seconds this worker may run (its "
                    "allocation); it starts no task it cannot expect to finish. Default: the "
                    "Slurm job's time left, else unlimited.")
gflags.DEFINE_enum("on_stop", _D.on_stop, list(ON_STOP), "What a worker does with a running "
                   "task when STOP appears: interrupt it within lease_secs/5 and give it back, "
                   "or let it finish and publish; either way nothing new starts.")
gflags.DEFINE_bool("abandon_open_round", _D.abandon_open_round, "Whether the master closes a round "
                  "an earlier master left open (crashed) and starts a new one, rather than "
                  "resume it: a resumed round must get the same tasks (names and bytes).")
gflags.DEFINE_integer("shard_size", _D.shard_size, "How many tasks the master puts in each "
                      "shard directory of a round, so that no listing grows with the round.",
                      lower_bound=1)
gflags.DEFINE_enum("log_level", "INFO", ["DEBUG", "INFO", "WARNING", "ERROR"],
                   "Logging level of the script.")

_COMMON = ("lease_secs", "max_attempts", "fsync")
_MASTER = _COMMON + ("master_idle_sleep_secs", "progress", "progress_secs", "abandon_open_round",
                      "shard_size")
WORKER_FLAGS = _COMMON + ("process_secs", "lockfile_timeout_threshold", "worker_idle_sleep_secs",
                     "worker_max_idle_secs", "take_lockfile_existence_as_lock", "use_tmp",
                     "tmp_folder", "walltime_secs", "on_stop")


def parse(argv: List[str]) -> List[str]:
    """Parse ``argv`` into FLAGS; on a bad flag print the error and usage, exit 2."""
    try:
        rest = FLAGS(argv)
    except gflags.Error as exc:
        sys.stderr.write(f"{exc}\nUsage: {argv[0]} [flags]\n{FLAGS}\n")
        sys.exit(2)
    logging.basicConfig(level=getattr(logging, FLAGS.log_level),
                        format="%(asctime)s %(levelname)s %(message)s")
    return rest


def parse_again(argv: List[str]) -> List[str]:
    """:func:`parse`, forgetting an earlier parse (``fsmw worker`` and ``fsmw run``)."""
    FLAGS.unparse_flags()
    return parse(argv)


def given(name: str) -> bool:
    """Whether flag ``name`` was on the command line."""
    return bool(FLAGS[name].present)


def _pick(keys) -> Dict[str, object]:
    return {key: getattr(FLAGS, key) for key in keys}


def master_options() -> Dict[str, object]:
    """Keyword arguments for :class:`fsmw.Master` from the parsed flags."""
    return _pick(_MASTER)


def worker_options() -> Dict[str, object]:
    """Keyword arguments for :class:`fsmw.Worker` from the parsed flags."""
    return _pick(WORKER_FLAGS)


def worker_id() -> Optional[int]:
    return FLAGS.worker_id
