"""What goes wrong in a schedule: failed calls, crashes, freezes, all drawn from the seed.

A :class:`Plan` is drawn once per schedule; most schedules get only some
kinds of fault, and some get none, so that both quiet and hostile runs are
explored.  Per file-system call: EIO (any call but a lock), ENOSPC (creates
and writes), ESTALE (lookups and listings), all before the call takes
effect, and EEXIST after a ``link`` that succeeded, and EIO from a ``close``
that did close the descriptor.  Per scheduling point:
a crash (all the process's descriptors closed and fcntl locks dropped, its
threads gone) or a freeze (SIGSTOP: no thread of it runs, heartbeat included,
for a while), each within a budget per schedule.

Property: every decision comes from the kernel's one seeded generator, in
the order the points happen.
"""

from __future__ import annotations

import errno
import random
from typing import Any, Dict


class Plan:
    """The fault rates and budgets of one schedule."""

    def __init__(self, rng: random.Random, lease: float, master_faults: bool = False) -> None:
        pick = rng.choice
        # Failed calls in the master end it on main (issue 11 item 10: it does not retry them
        # yet), and a restarted master starts the round over (item 6): off unless asked for.
        self.master_faults = master_faults
        self.eio = pick((0.0, 0.0, 0.002, 0.01))
        self.enospc = pick((0.0, 0.0, 0.003, 0.01))
        self.estale = pick((0.0, 0.0, 0.003, 0.01))
        self.eexist_link = pick((0.0, 0.05, 0.2))
        self.crash = pick((0.0, 0.002, 0.005))
        self.freeze = pick((0.0, 0.002, 0.005))
        self.max_crashes = pick((1, 2, 3))
        self.max_freezes = pick((1, 3))
        self.freeze_secs = (0.3, 1.5, lease * 1.2, lease * 2.5)

    def as_dict(self) -> Dict[str, object]:
        return {k: v for k, v in vars(self).items() if k != "freeze_secs"}


class Faults:
    """Draws the faults of one schedule at its calls and points."""

    def __init__(self, kernel: Any, plan: Plan) -> None:
        self.kernel, self.plan = kernel, plan
        self.rng: random.Random = kernel.rng
        self.crashes = self.freezes = 0
        self.counts: Dict[str, int] = {}
        self._any_call = plan.eio or plan.enospc or plan.estale

    def draw(self, proc: Any, kinds: str) -> int:
        """An errno to fail this call with (before it takes effect), or 0."""
        if not self._any_call or not kinds or proc.role == "init" or \
                (proc.role == "master" and not self.plan.master_faults):
            return 0
        x, plan = self.rng.random(), self.plan
        if x < plan.eio:
            return self._count(errno.EIO)
        x -= plan.eio
        if ("c" in kinds or "w" in kinds) and x < plan.enospc:
            return self._count(errno.ENOSPC)
        x -= plan.enospc
        if "s" in kinds and x < plan.estale:
            return self._count(errno.ESTALE)
        return 0

    def _count(self, code: int) -> int:
        name = errno.errorcode[code]
        self.counts[name] = self.counts.get(name, 0) + 1
        return code

    def eexist_after_link(self, proc: Any) -> bool:
        if self.plan.eexist_link and proc.role != "init" and self.rng.random() < self.plan.eexist_link:
            self._count(errno.EEXIST)
            return True
        return False

    def at_point(self, proc: Any) -> None:
        """Maybe crash or freeze ``proc`` (the process about to make a call)."""
        plan = self.plan
        if proc.role == "init" or not (plan.crash or plan.freeze):
            return
        x = self.rng.random()
        if x < plan.crash and self.crashes < plan.max_crashes:
            self.crashes += 1
            self.kernel.crash(proc, "CRASH")
        elif plan.crash <= x < plan.crash + plan.freeze and self.freezes < plan.max_freezes:
            self.freezes += 1
            secs = self.rng.choice(plan.freeze_secs)
            proc.frozen_until = self.kernel.now + secs
            proc.frozen_secs.append((self.kernel.now, self.kernel.now + secs))
            self.kernel.note("FREEZE", proc.name, f"{secs:.1f} s")
