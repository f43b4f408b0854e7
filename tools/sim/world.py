"""One schedule: a seed turned into nodes, a master, workers, faults, and a verdict.

The seed draws the shape of the run (tasks, rounds, workers, nodes with
their caches, clock skew and fcntl support, task times, flaky and poisoned
tasks) and the fault plan (``faults``).  An ``init`` process (never faulted)
plays the user and the batch scheduler: it restarts a master that died and
replaces workers that crashed or died, after a drawn delay (0.5 to 5 s), and
ends the schedule once the last master returned (or died after writing STOP)
and every worker has exited.  Lease 4 s (heartbeat 0.8 s), idle sleeps up to
1 s, workers give up after 30 s idle.

Bounds: ``TIME_BOUND`` seconds of virtual time and ``POINT_BOUND`` calls;
a run that hits either did not end (a liveness violation).

Property: :meth:`World.run` is a pure function of the seed (and the
mutation, if any): the same seed gives the same trace.
"""

from __future__ import annotations

import logging
import random
from typing import Any, Dict, Iterable, List, Optional

import fsmw
from fsmw._core import atomic, claims, layout, system

from .apps import SimClock, SimMaster, SimWorker, proc_rng
from .checks import Checker
from .faults import Faults, Plan
from .kernel import Kernel, Proc
from .nfs import Node, Server
from .procfs import ProcFS

ROOT = "/sim/store"
LEASE = 4.0
SHARD_SIZE = 2  # rounds of 1-6 tasks: one to three shards
TIME_BOUND = 400.0
POINT_BOUND = 60_000


class World:
    """The simulated cluster of one schedule."""

    def __init__(self, seed: int, tracing: bool = False, master_faults: bool = False,
                 known: Iterable[str] = ()) -> None:
        self.seed, self.tracing, self.root = seed, tracing, ROOT
        rng = random.Random(seed)
        self.kernel = kernel = Kernel(rng, rng.choice((0.1, 0.3, 0.7)), TIME_BOUND, POINT_BOUND)
        self.server = Server(kernel)
        self.server.root.entries["sim"] = self.server.new(True, None).ino  # type: ignore[index]
        locks = rng.random() < 0.5
        self.nodes = [Node(f"node{i}", rng.choice((0.0, 0.2, 1.0)), rng.choice((0.0, 0.5, 2.0)),
                           rng.uniform(-600, 600), locks) for i in range(rng.choice((1, 2, 3)))]
        self.shape = dict(tasks=rng.randint(1, 6), rounds=rng.choice((1, 1, 2)), workers=rng.randint(1, 3),
                          nodes=len(self.nodes), locks=locks)
        self.behaviour = dict(secs=rng.choice(((0.05,), (0.1, 0.5, 2.0), (0.2, 6.0), (1.0, 8.0))),
                              flaky=rng.choice((0.0, 0.0, 0.1)),
                              poison=rng.choice(("none", "none", "t0")))
        self.plan = Plan(rng, LEASE, master_faults)
        self.faults = Faults(kernel, self.plan)
        self.check = Checker(self, LEASE, max(n.actimeo for n in self.nodes), known)
        kernel.on_point = self.faults.at_point
        kernel.on_crash = self._on_crash
        self.masters: List[Proc] = []
        self.workers: List[Proc] = []
        self._worker_ids = 0
        self._pending: List[tuple] = []  # (at, role) of restarts due

    # -- the processes ------------------------------------------------------------------
    def _options(self) -> Dict[str, Any]:
        return dict(lease_secs=LEASE, master_idle_sleep_secs=1.0, worker_idle_sleep_secs=1.0,
                    worker_max_idle_secs=30.0, progress=False, shard_size=SHARD_SIZE)

    def _setup(self, proc: Proc) -> Dict[str, Any]:
        proc.rng = proc_rng(self.kernel)  # type: ignore[attr-defined]
        node: Node = proc.node  # type: ignore[assignment]
        proc.fs = fs = ProcFS(self, proc, node)  # type: ignore[attr-defined]
        clock = SimClock(self.kernel, proc, node.wall_offset, proc.rng.uniform(0, 1e4))  # type: ignore
        return dict(fs=fs, clock=clock, **self._options())

    def start_master(self) -> None:
        node = self.kernel.rng.choice(self.nodes)
        shape = self.shape

        def main(proc: Proc) -> object:
            return SimMaster(ROOT, shape["tasks"], shape["rounds"], **self._setup(proc)).run()
        self.masters.append(self.kernel.spawn(node, "master", f"m{len(self.masters) + 1}", main))

    def start_worker(self) -> None:
        node = self.kernel.rng.choice(self.nodes)
        self._worker_ids += 1
        wid = self._worker_ids

        def main(proc: Proc) -> object:
            return SimWorker(ROOT, wid, self.behaviour, **self._setup(proc)).run()
        self.workers.append(self.kernel.spawn(node, "worker", f"w{wid}", main))

    def _on_crash(self, proc: Proc) -> None:
        fs = getattr(proc, "fs", None)
        if fs is not None:
            fs.drop_all()
        if type(proc.error).__name__ == "TakenOver":
            root = self.server.resolve(ROOT)
            for name, ino in (root.entries or {}).items() if root is not None else ():
                owner = self.server.inodes[ino].creator
                if name.startswith("master.claim.") and owner is proc:
                    self.check.fail("false-takeover", f"{proc.name} stopped as taken over, but its claim "
                                    f"{name} is still its own (nobody took the store over)")

    def pid_alive(self, node: Node, pid: int) -> bool:
        return any(p.pid == pid and p.node is node and not p.crashed for p in self.kernel.procs)

    @property
    def last_master(self) -> Optional[Proc]:
        return self.masters[-1] if self.masters else None

    # -- init: the user and the batch scheduler -------------------------------------------
    def _init(self, proc: Proc) -> None:
        kernel = self.kernel
        self.start_master()
        for _ in range(self.shape["workers"]):
            self.start_worker()
        while True:
            master = self.last_master
            if self._finished(master) and all(w.crashed for w in self.workers) and not self._pending:
                kernel.over = "done"
                kernel.block(float("inf"))
            self._restarts(master)
            kernel.block(kernel.now + 0.25)

    def _finished(self, master: Optional[Proc]) -> bool:
        """The master returned, or died once the run was over (STOP written): no restart then."""
        return master is not None and (master.result is not None or
                                       (master.crashed and self.exists(f"{ROOT}/{layout.STOP}")))

    def _restarts(self, master: Optional[Proc]) -> None:
        kernel, rng = self.kernel, self.kernel.rng
        finished = self._finished(master)
        if master is not None and master.crashed and not finished and not self._due("master"):
            self._pending.append((kernel.now + rng.uniform(0.5, 5.0), "master"))
        for w in self.workers:
            if w.crashed and not getattr(w, "replaced", False) and not finished:
                w.replaced = True  # type: ignore[attr-defined]
                if w.result != fsmw.ExitCode.STOPPED:
                    self._pending.append((kernel.now + rng.uniform(0.5, 5.0), "worker"))
        for item in [p for p in self._pending if p[0] <= kernel.now]:
            self._pending.remove(item)
            self.start_master() if item[1] == "master" else self.start_worker()

    def _due(self, role: str) -> bool:
        return any(r == role for _, r in self._pending)

    # -- looking at the server (for checks and reports; no scheduling point) ---------------
    def short(self, path: object) -> str:
        text = str(path)
        return text[len(ROOT) + 1:] if text.startswith(ROOT + "/") else text

    def names(self, path: str) -> List[str]:
        node = self.server.resolve(path)
        return list(node.entries) if node is not None and node.entries is not None else []

    def exists(self, path: str) -> bool:
        return self.server.resolve(path) is not None

    def last_round(self) -> int:
        return max((n for n in map(layout.round_number, self.names(ROOT)) if n is not None), default=0)

    def run(self) -> None:
        self.kernel.spawn(self.nodes[0], "init", "init", self._init)
        with guarded() as escapes:
            self.kernel.run()
        for escape in escapes:
            self.check.fail("escaped", escape)
        self.check.finish(self.kernel.over or "no end")


class guarded:
    """While a schedule runs: the real file system raises, fsmw logs nothing, names repeat.

    fsmw's functions default to ``fs=REAL_FS``; a call that reached it would
    escape the simulation, so every method of REAL_FS raises meanwhile.  The
    temp-name stem of calls that pass no ``fs`` (the worker's output temp) is
    fixed and its counter reset, so names repeat from run to run.
    """

    METHODS = ("open", "close", "read", "write", "pwrite", "fsync", "fstat", "stat", "lstat", "link",
               "unlink", "rename", "listdir", "mkdir", "rmdir", "utime", "access", "pathconf", "lockf",
               "syncfs", "realpath", "mountinfo", "pid_alive", "random_hex")

    def __enter__(self) -> List[str]:
        real, self.escapes = system.REAL_FS, []
        for name in self.METHODS:
            setattr(real, name, _escaped(name, self.escapes))
        self._stem = atomic._UNIQUE.stem, atomic._UNIQUE.counter
        atomic._UNIQUE.stem = ".tmp.sim.0.00000000"
        atomic._UNIQUE.counter = __import__("itertools").count()
        # fcntl locks "held by this process" are one set per real process (claims._HELD_HERE):
        # every simulated process shares it, so start each schedule with it empty.
        self._held = set(claims._HELD_HERE)
        claims._HELD_HERE.clear()
        self._level = logging.getLogger("fsmw").level
        logging.getLogger("fsmw").setLevel(logging.CRITICAL + 1)
        return self.escapes

    def __exit__(self, *exc: object) -> None:
        real = system.REAL_FS
        for name in self.METHODS:
            real.__dict__.pop(name, None)
        atomic._UNIQUE.stem, atomic._UNIQUE.counter = self._stem
        claims._HELD_HERE.clear()
        claims._HELD_HERE.update(self._held)
        logging.getLogger("fsmw").setLevel(self._level)


class EscapedError(AssertionError):
    """fsmw reached the real file system during a simulation."""


def _escaped(name: str, escapes: List[str]) -> Any:
    def call(*args: object, **kwargs: object) -> None:
        escapes.append(f"the simulation reached the real file system: REAL_FS.{name}{args[:2]}")
        raise EscapedError(escapes[-1])
    return call
