"""What a worker's pass and a worker's run end with: StepResult and ExitCode."""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """What :meth:`Worker.run` returns; suitable for ``sys.exit``."""

    STOPPED = 0  # STOP found (the master's end, or fsmw stop); with on_stop="interrupt" a
    #              running task was interrupted and given back first
    ERROR = 1  # the store is unusable, or fsmw itself failed
    IDLE_TIMEOUT = 3  # no work for worker_max_idle_secs
    INTERRUPTED = 4  # SIGTERM, SIGINT or SIGUSR1
    OUT_OF_TIME = 5  # the allocation's time left is shorter than a task
    # A worker stuck in C code that its keeper had to kill ends by SIGKILL (-9, or 137 in a shell).


class StepResult(enum.Enum):
    WORKED = "worked"
    IDLE = "idle"
    STOP = "stop"
    INTERRUPTED = "interrupted"
    OUT_OF_TIME = "out of time"


EXITS = {StepResult.STOP: (ExitCode.STOPPED, "stop file found"),
          StepResult.INTERRUPTED: (ExitCode.INTERRUPTED, "interrupted"),
          StepResult.OUT_OF_TIME: (ExitCode.OUT_OF_TIME, "less allocation left than a task takes")}
