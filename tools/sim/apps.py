"""The simulated processes' clock, threads and locks, and the master and worker they run.

:class:`SimClock` is an :class:`fsmw.Clock` in virtual time: ``now()`` is the
kernel's time plus the process's own monotonic offset, ``time()`` adds its
node's wall-clock skew, ``sleep`` and waits are scheduling points that block
in virtual time, and threads (the heartbeat) are simulated threads of the
process, so a freeze or a crash stops them too.

The master writes ``tasks`` inputs per round; the worker reads its input,
spends a drawn time in virtual sleep, and writes ``checks.result_of(input)``
in two writes (so an output published too early would be torn), or fails
(the plan's flaky rate, and always for a poisoned task).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

import fsmw
from fsmw._core.system import O_CREATE_NEW, O_READ

from .checks import result_of
from .kernel import Kernel, Proc, SimCrash, current_thread
from .nfs import EPOCH


class SimEvent:
    """``threading.Event`` in virtual time."""

    def __init__(self, kernel: Kernel) -> None:
        self._kernel, self._flag = kernel, False

    def set(self) -> None:
        self._flag = True

    def clear(self) -> None:
        self._flag = False

    def is_set(self) -> bool:
        return self._flag

    def wait(self, timeout: Optional[float] = None) -> bool:
        if not self._flag:
            wake = float("inf") if timeout is None else self._kernel.now + max(timeout, 0.0)
            self._kernel.block(wake, self.is_set)
        return self._flag


class SimLock:
    """``threading.Lock`` among simulated threads (held across points at most)."""

    def __init__(self, kernel: Kernel) -> None:
        self._kernel, self._held = kernel, False

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if current_thread().proc.crashed:
            raise SimCrash()
        while self._held:
            if not blocking:
                return False
            self._kernel.block(float("inf"), lambda: not self._held)
        self._held = True
        return True

    def release(self) -> None:
        self._held = False

    def __enter__(self) -> "SimLock":
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class SimClock(fsmw.Clock):
    """One simulated process's clock (see the module docstring)."""

    def __init__(self, kernel: Kernel, proc: Proc, wall_offset: float, mono_offset: float) -> None:
        super().__init__(now=lambda: kernel.now + mono_offset, sleep=self._sleep_secs, rng=proc.rng,
                         wall=lambda: EPOCH + kernel.now + wall_offset)
        self._kernel, self._proc = kernel, proc

    def _sleep_secs(self, secs: float) -> None:
        self._kernel.block(self._kernel.now + max(secs, 0.0))

    def sleep(self, secs: float, wake: Any = None) -> None:
        self._kernel.block(self._kernel.now + max(secs, 0.0))

    def start_thread(self, target: Callable[[], None], name: str) -> Any:  # type: ignore[override]
        return self._kernel.start_thread(self._proc, target, name)

    def event(self) -> Any:  # type: ignore[override]
        return SimEvent(self._kernel)

    def lock(self) -> Any:  # type: ignore[override]
        return SimLock(self._kernel)

    def run_helper(self, argv: Any, timeout: float = 30.0) -> Optional[str]:  # type: ignore[override]
        return None


class SimMaster(fsmw.Master):
    """Writes ``tasks`` inputs per round, for ``rounds`` rounds."""

    def __init__(self, root: str, tasks: int, rounds: int, **kwargs: Any) -> None:
        super().__init__(root, **kwargs)
        self.tasks, self.rounds = tasks, rounds

    def create_input_files(self) -> None:
        for i in range(self.tasks):
            self.create_input_file(f"t{i}", f"input {i} of round {self.round}")

    def process_output_files(self, outputs: Mapping[str, Path]) -> bool:
        return self.round < self.rounds


class SimWorker(fsmw.Worker):
    """Computes ``result_of(input)`` through the simulated file system, in virtual time."""

    def __init__(self, root: str, worker_id: int, behaviour: Mapping[str, Any], **kwargs: Any) -> None:
        super().__init__(root, worker_id, **kwargs)
        self._sim_clock: SimClock = kwargs["clock"]
        self._behaviour = behaviour

    def process_file(self, input_path: Path, output_path: Path) -> None:
        fs, rng = self.store.fs, self._sim_clock.rng
        fd = fs.open(str(input_path), O_READ)
        try:
            data = fs.read(fd, 1 << 16)
        finally:
            fs.close(fd)
        self._sim_clock.sleep(rng.choice(self._behaviour["secs"]))
        if input_path.name.startswith(self._behaviour["poison"] + "."):
            raise ValueError("this task always fails")
        if rng.random() < self._behaviour["flaky"]:
            raise ValueError("this attempt fails")
        result = result_of(data)
        fd = fs.open(str(output_path), O_CREATE_NEW, 0o666)
        try:
            half = len(result) // 2
            fs.write(fd, result[:half])
            fs.write(fd, result[half:])
        finally:
            fs.close(fd)


def proc_rng(kernel: Kernel) -> random.Random:
    """A process's own generator, seeded from the schedule's (its draws stay in its order)."""
    return random.Random(kernel.rng.getrandbits(64))
