"""What goes wrong in a schedule: failed calls, crashes, freezes, all drawn from the seed.

A :class:`Plan` is drawn once per schedule; most schedules get only some
kinds of fault, and some get none, so that both quiet and hostile runs are
explored.  Per file-system call: EIO (any call but a lock), ENOSPC (creates
and writes), ESTALE (lookups and listings), all before the call takes
effect, and EEXIST after a ``link`` that succeeded, and EIO from a ``close``
that did close the descriptor.  Per scheduling point:
a crash (all the process's descriptors closed and fcntl locks dropped, its
threads gone) or a freeze (SIGSTOP: no thread of it runs, heartbeat included,
for 0.3 s to 3 leases), at call numbers drawn per schedule (0 to 3
crashes, 0 to 4 freezes), each of a live process drawn then (every process
not running is stopped between two of its calls).

Property: every decision comes from the kernel's one seeded generator, in
the order the points happen.
"""

from __future__ import annotations

import errno
import random
from typing import Any, Dict


SPREAD = 300  # calls over which crashes and freezes are drawn (a run makes about 330)


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
        # Crashes and freezes happen at drawn call numbers, spread over a typical run
        # (median about 330 calls), so that they hit every phase of it, not only its start.
        self.crashes = sorted(rng.randrange(SPREAD) for _ in range(pick((0, 0, 1, 2, 3))))
        self.freezes = sorted(rng.randrange(SPREAD) for _ in range(pick((0, 1, 2, 4))))
        self.freeze_secs = (0.3, 1.5, lease * 1.2, lease * 2.0, lease * 3.0)

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
        """At a drawn call number, crash or freeze a live process (any: each is between two calls)."""
        plan, points = self.plan, self.kernel.points
        due_crash = self.crashes < len(plan.crashes) and points >= plan.crashes[self.crashes]
        due_freeze = self.freezes < len(plan.freezes) and points >= plan.freezes[self.freezes]
        if not (due_crash or due_freeze):
            return
        live = [p for p in self.kernel.procs if p.role != "init" and not p.crashed]
        if not live:
            return
        target = self.rng.choice(live)
        if due_crash:
            self.crashes += 1
            self.kernel.crash(target, "CRASH")
        else:
            self.freezes += 1
            secs = self.rng.choice(plan.freeze_secs)
            start = max(self.kernel.now, target.frozen_until)
            target.frozen_until = start + secs
            target.frozen_secs.append((self.kernel.now, target.frozen_until))
            self.kernel.note("FREEZE", target.name, f"{secs:.1f} s")
