"""A worker's allocation: how long it may still run, so that it starts no task it cannot finish.

The time left is ``walltime_secs`` if given, else what Slurm says is left of
the job's time limit (``squeue -h -j $SLURM_JOB_ID -o %L``, asked once at
start), else unlimited.  A worker exits with ``ExitCode.OUT_OF_TIME`` once the
time left is shorter than a typical task.
"""

from __future__ import annotations

import os
from typing import Callable, Mapping, Optional

from .._core.system import Clock

def slurm_time_left(environ: Mapping[str, str], clock: Clock) -> Optional[float]:
    """Seconds left in this Slurm job's time limit (asks squeue once), or None."""
    job = environ.get("SLURM_JOB_ID")
    if not job:
        return None
    out = clock.run_helper(["squeue", "-h", "-j", job, "-o", "%L"])
    return None if out is None else parse_slurm_duration(out.strip())


def parse_slurm_duration(text: str) -> Optional[float]:
    """``[D-]HH:MM:SS``, ``MM:SS`` or ``SS`` in seconds; None for UNLIMITED and the like."""
    days, _, clock = text.rpartition("-")
    parts = clock.split(":")
    if not all(p.isdigit() for p in parts) or not 1 <= len(parts) <= 3 or \
            (days and not days.isdigit()):
        return None
    secs = 0
    for part in parts:
        secs = secs * 60 + int(part)
    return secs + int(days or 0) * 86400.0


class Allocation:
    """A worker's allocation: ``walltime_secs``, else the Slurm job's time left, else unlimited."""

    def __init__(self, walltime_secs: Optional[float], clock: Clock,
                 environ: Optional[Mapping[str, str]] = None) -> None:
        self._clock = clock
        if walltime_secs is None:
            walltime_secs = slurm_time_left(os.environ if environ is None else environ, clock)
        self._deadline = None if walltime_secs is None else clock.now() + walltime_secs

    def time_left(self) -> Optional[float]:
        return None if self._deadline is None else self._deadline - self._clock.now()

    def too_short(self, typical_secs: Callable[[], Optional[float]]) -> bool:
        """True when the time left cannot be expected to fit one more task.

        ``typical_secs`` is asked only when the allocation is limited: it takes
        a median, which the hot path of an unlimited worker does without.
        """
        left = self.time_left()
        if left is None:
            return False
        typical = typical_secs()
        return left <= 0 or (typical is not None and left < typical)
