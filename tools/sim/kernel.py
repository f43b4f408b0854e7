"""The simulation's kernel: simulated processes and threads, virtual time, one baton.

Every simulated thread is a real Python thread, but exactly one of them runs
at a time: the one holding the baton.  A thread gives the baton away only at
a *point*: every file-system call (``procfs.ProcFS``), every sleep, event
wait, lock and join (``apps.SimClock``).  At a point the running thread itself draws,
from the schedule's one seeded generator, whether to go on or to hand the
baton to another runnable thread, and whether to crash or freeze a process
(``faults``).  So the whole interleaving, and with it every result, is a
function of the seed.

The running thread hands the baton on with probability ``switch_p`` (drawn
per schedule: 0.1, 0.3 or 0.7) at each call, and always when it blocks or
its process is frozen; the next thread is drawn among the runnable ones.
Virtual time moves by ``OP_SECS`` per point and jumps, when nothing can run,
to the next wake-up (a sleep ending, a frozen process thawing).  A crashed
process's threads raise :class:`SimCrash` at their next point: they unwind
without touching the file system again (every later point raises too).

Property: given the seed (and ``PYTHONHASHSEED``, which orders fsmw's sets),
the sequence of points, and so the trace, is the same on every run.
"""

from __future__ import annotations

import random
import threading
from typing import Callable, Dict, List, Optional

OP_SECS = 0.001  # virtual time one file-system call takes
_local = threading.local()


class SimCrash(BaseException):
    """Raised inside a simulated process that crashed (or exited): unwind, touch nothing."""


class Proc:
    """A simulated process on a node: its pid, state and threads."""

    def __init__(self, kernel: "Kernel", node: object, pid: int, role: str, name: str) -> None:
        self.kernel, self.node, self.pid, self.role, self.name = kernel, node, pid, role, name
        self.crashed = False  # crashed or exited: its threads unwind at their next point
        self.exited = False
        self.frozen_until = 0.0
        self.frozen_secs: List[tuple] = []  # (from, to) of every freeze
        self.result: object = None
        self.error: Optional[BaseException] = None
        self.threads: List["SimThread"] = []

    @property
    def alive(self) -> bool:
        return not self.crashed


class SimThread:
    """A real thread that runs only while it holds the baton."""

    def __init__(self, kernel: "Kernel", proc: Proc, target: Callable[[], object], name: str,
                 main: bool) -> None:
        self.kernel, self.proc, self.name, self.main = kernel, proc, name, main
        self._target = target
        self.go = threading.Lock()
        self.go.acquire()
        self.wake_at = 0.0
        self.waiting: Optional[Callable[[], bool]] = None  # runnable once this is true
        self.done = False
        self.last: tuple = ()  # this thread's last file-system call (the checker reads it)
        self.prev: tuple = ()  # and the one before
        self.recent: List[tuple] = []  # its last few calls, newest last (the fence check's stat)
        self.real = threading.Thread(target=self._run, name=f"sim-{proc.name}-{name}", daemon=True)

    def _run(self) -> None:
        self.go.acquire()
        _local.thread = self
        kernel = self.kernel
        try:
            if self.proc.crashed:
                raise SimCrash()
            result = self._target()
            if self.main:
                self.proc.result = result
        except SimCrash:
            pass
        except BaseException as exc:  # the process died of an exception: it exits
            if self.main:
                self.proc.error = exc
            else:
                kernel.note("thread-error", self.proc.name, repr(exc))
        finally:
            self.done = True
            if self.main and not self.proc.crashed:
                kernel.exit_proc(self.proc)
            kernel.thread_ended(self)

    def join(self) -> None:
        """Wait (a point) until this thread has ended."""
        if self.done:
            return
        self.kernel.block(float("inf"), lambda: self.done)


class Kernel:
    """The scheduler: who runs next, virtual time, and the end of the schedule."""

    def __init__(self, rng: random.Random, switch_p: float, time_bound: float, point_bound: int) -> None:
        self.rng = rng
        self.switch_p = switch_p
        self.now = 0.0
        self.points = 0
        self.time_bound = time_bound
        self.point_bound = point_bound
        self.threads: List[SimThread] = []
        self.procs: List[Proc] = []
        self.current: Optional[SimThread] = None
        self.trace: List[tuple] = []
        self.over: Optional[str] = None  # why the schedule ended
        self.tearing_down = False
        self._main_wait = threading.Lock()
        self._main_wait.acquire()
        self.on_point: Callable[[Proc], None] = lambda proc: None  # faults: crash/freeze here?
        self.on_crash: Callable[[Proc], None] = lambda proc: None  # close its files, drop its locks
        self._pids: Dict[object, int] = {}

    # -- processes -------------------------------------------------------------
    def spawn(self, node: object, role: str, name: str, target: Callable[[Proc], object]) -> Proc:
        pid = self._pids.get(node, 100) + 1
        self._pids[node] = pid
        proc = Proc(self, node, pid, role, name)
        self.procs.append(proc)
        self.start_thread(proc, lambda: target(proc), "main", main=True)
        self.note("spawn", name, f"pid {pid}")
        return proc

    def start_thread(self, proc: Proc, target: Callable[[], object], name: str,
                     main: bool = False) -> SimThread:
        thread = SimThread(self, proc, target, name, main)
        proc.threads.append(thread)
        self.threads.append(thread)
        thread.real.start()
        return thread

    def crash(self, proc: Proc, why: str) -> None:
        if proc.crashed:
            return
        proc.crashed = True
        proc.frozen_until = 0.0
        if why != "exit":
            self.note(why, proc.name)
        for thread in proc.threads:
            thread.wake_at, thread.waiting = 0.0, None  # unwind now
        self.on_crash(proc)

    def exit_proc(self, proc: Proc) -> None:
        proc.exited = True
        result = getattr(proc.result, "name", proc.result)
        ended = repr(proc.error) if proc.error is not None else str(result).split("\n")[0]
        self.note("exit", proc.name, ended)
        self.crash(proc, "exit")

    def note(self, *event: object) -> None:
        self.trace.append((round(self.now, 6),) + event)

    # -- the baton -------------------------------------------------------------
    def run(self) -> None:
        """Run the schedule from the main (non-simulated) thread until it is over."""
        first = self._pick()
        if first is None:
            self.over = self.over or "nothing to run"
            return
        self.current = first
        first.go.release()
        self._main_wait.acquire()
        self._teardown()

    def point(self) -> None:
        """A file-system call is about to be made by the running thread."""
        me: SimThread = _local.thread
        proc = me.proc
        if proc.crashed:
            raise SimCrash()
        self.now += OP_SECS
        self.points += 1
        self.on_point(proc)
        if proc.crashed:
            raise SimCrash()
        if self.over is not None or proc.frozen_until > self.now or self.rng.random() < self.switch_p:
            self._switch(me)

    def block(self, wake_at: float, until: Optional[Callable[[], bool]] = None) -> None:
        """The running thread waits until ``wake_at`` or until ``until()`` holds."""
        me: SimThread = _local.thread
        if me.proc.crashed:
            raise SimCrash()
        me.wake_at, me.waiting = wake_at, until
        self._switch(me)
        me.wake_at, me.waiting = 0.0, None

    def _runnable(self, t: SimThread) -> bool:
        if t.done or t.proc.frozen_until > self.now:
            return False
        if t.wake_at <= self.now:
            return True
        return t.waiting is not None and t.waiting()

    def _pick(self) -> Optional[SimThread]:
        while self.over is None:
            ready = [t for t in self.threads if self._runnable(t)]
            if ready:
                return ready[0] if len(ready) == 1 else self.rng.choice(ready)
            wakes = [max(t.wake_at, t.proc.frozen_until) for t in self.threads if not t.done]
            wakes = [w for w in wakes if w > self.now and w != float("inf")]
            if not wakes:
                self.over = "deadlock: nothing can run"
                break
            self.now = min(wakes)
            if self.now > self.time_bound:
                self.over = f"time bound: still running at {self.time_bound:.0f} s of virtual time"
        return None

    def _switch(self, me: SimThread) -> None:
        if self.points > self.point_bound and self.over is None:
            self.over = f"point bound: {self.point_bound} calls"
        if self.now > self.time_bound and self.over is None:
            self.over = f"time bound: still running at {self.time_bound:.0f} s of virtual time"
        nxt = self._pick() if self.over is None else None
        if nxt is me:
            return
        if nxt is None:  # the schedule is over: give the main thread back, park
            self.current = None
            self._main_wait.release()
            me.go.acquire()
            raise SimCrash()
        self.current = nxt
        nxt.go.release()
        me.go.acquire()
        self.current = me
        if me.proc.crashed:
            raise SimCrash()

    def thread_ended(self, me: SimThread) -> None:
        """Called by a thread as it ends: pass the baton on (or back to the main thread)."""
        if self.tearing_down:
            self._main_wait.release()
            return
        nxt = self._pick()
        if nxt is None:
            self.current = None
            self._main_wait.release()
            return
        self.current = nxt
        nxt.go.release()

    def _teardown(self) -> None:
        """Unwind every thread still parked (each raises SimCrash at once)."""
        self.tearing_down = True
        for proc in self.procs:
            proc.crashed = True
        for thread in self.threads:
            if not thread.done:
                thread.go.release()
                self._main_wait.acquire()
        for thread in self.threads:
            thread.real.join(5.0)


def current_thread() -> SimThread:
    return _local.thread
