"""fsmw: a master–worker task farm that needs nothing but a shared file system.

A master writes one input file per task into a store directory; workers on any
number of nodes claim inputs, process them and publish outputs; the master
collects them, may start another round, and finally tells the workers to stop.
See README.md for the protocol and the store layout.
"""

from __future__ import annotations

from typing import Any

from ._core.errors import FsmwError, StoreError, TaskNameError
from ._master.master import Master
from ._master.resume import RoundMismatch
from ._master.summary import Failure, Summary
from ._options import Options
from ._core.store import Store
from ._core.system import Clock
from ._worker.codes import ExitCode, StepResult
from ._worker.worker import Worker

__all__ = [
    "Clock",
    "ExitCode",
    "Executor",
    "Failure",
    "FsmwError",
    "Master",
    "NotImportable",
    "Options",
    "PayloadRejected",
    "RemoteTraceback",
    "RoundMismatch",
    "StepResult",
    "Store",
    "StoreError",
    "Summary",
    "TaskFailed",
    "TaskNameError",
    "Worker",
]
__version__ = "0.1.0"

# The generic tasks (fsmw.Executor and its errors) load on first use: a worker's keeper
# process imports this package, and pays for every import here at its start.
_LAZY = {"Executor": "executor", "NotImportable": "calls", "RemoteTraceback": "calls",
         "TaskFailed": "calls", "PayloadRejected": "sealed"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(f"._tasks.{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'fsmw' has no attribute {name!r}")
