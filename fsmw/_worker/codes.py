"""What a worker's pass and a worker's run end with: StepResult and ExitCode."""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """What :meth:`Worker.run` returns; suitable for ``sys.exit``."""

    STOPPED = 0  # the master wrote the stop file
    ERROR = 1  # the store is unusable, or fsmw itself failed
    IDLE_TIMEOUT = 3  # no work for worker_max_idle_secs
    INTERRUPTED = 4  # SIGTERM, SIGINT or SIGUSR1
    OUT_OF_TIME = 5  # the allocation's time left is shorter than a task


class StepResult(enum.Enum):
    WORKED = "worked"
    IDLE = "idle"
    STOP = "stop"
    INTERRUPTED = "interrupted"
    OUT_OF_TIME = "out of time"


EXITS = {StepResult.STOP: (ExitCode.STOPPED, "stop file found"),
          StepResult.INTERRUPTED: (ExitCode.INTERRUPTED, "interrupted"),
          StepResult.OUT_OF_TIME: (ExitCode.OUT_OF_TIME, "less allocation left than a task takes")}
