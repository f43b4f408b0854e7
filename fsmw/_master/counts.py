"""The master's progress in a round: counts per shard, from one listing per unfinished shard.

Protocol of a poll (:meth:`RoundCounts.poll`): list the round's own
directory (its shards), then each shard not yet known to be finished, in
order, counting its inputs, outputs and failure marks (and marking failed a
task left at the attempt limit, ``Shard.mark_poisoned``).  The poll stops
after the first shard that no worker has touched yet (nothing but inputs):
workers take shards in order, so the shards after it are untouched too, and
their counts stay as the last poll saw them.

Property: the master holds a few counts per shard, never a name per task,
and a round is complete only when every shard's inputs have each an output
or a failure mark: a shard never listed counts nothing, so completion is
never reported early.  A shard is *finished* (never listed again) once it is
full and every input has an output; one with failures is listed at every
poll, since ``fsmw requeue`` may reopen them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

from .._core import layout as names
from .._core.rounddir import RoundDir
from .._core.shard import Shard
from .._core.view import RoundView, scan_names


Watch = Callable[[Shard, Set[str], Set[str]], None]


@dataclass
class ShardCount:
    """What the last listing of one shard showed."""

    inputs: int = 0
    done: int = 0
    failed: int = 0


class RoundCounts:
    """Counts of one round's tasks, shard by shard."""

    def __init__(self, round_dir: RoundDir, max_attempts: int, log: Any,
                 watch: Optional[Watch] = None) -> None:
        self.round = round_dir
        self._watch = watch  # told each listed shard's done and failed tasks
        self._limit = max_attempts
        self._log = log
        self._counts: Dict[int, ShardCount] = {}
        self.finished: Set[int] = set()
        self.temps: List[str] = []  # "<shard>/<temp name>": the last poll's, and finished shards' last
        self._finished_temps: List[str] = []  # seen when their shard finished (it is not listed again)

    @property
    def done(self) -> int:
        return sum(c.done for c in self._counts.values())

    @property
    def failed(self) -> int:
        return sum(c.failed for c in self._counts.values())

    def poll(self, sealed: bool) -> None:
        """List the round and its unfinished shards, and count.

        Args:
            sealed: every input is written (so the last shard is full too).
        """
        indices = self.round.shards()
        self.temps = list(self._finished_temps)
        for position, index in enumerate(indices):
            if index in self.finished:
                continue
            shard = self.round.shard(index)
            entries = shard.listing()
            if not entries:  # ESTALE, or a shard just made: counted at a later poll, never finished
                continue
            view, claimed = quick_scan(entries)
            if view is None:  # error records: a full parse, and tasks at the limit marked failed
                view = scan_names(entries)
                claimed = bool(view.claims or view.errors)
                self._mark_poisoned(shard, view)
            self._count(shard, view, full=sealed or position < len(indices) - 1)
            if not (claimed or view.outputs or view.failed):
                break  # untouched: so are the shards after it (workers take shards in order)

    def _count(self, shard: Shard, view: RoundView, full: bool) -> None:
        inputs = view.inputs
        done = inputs & view.outputs
        failed = (inputs & view.failed) - view.outputs if view.failed else set()
        count = ShardCount(len(inputs), len(done), len(failed))
        if self._watch is not None:
            self._watch(shard, done, failed)
        self._counts[shard.index] = count
        temps = [f"{shard.index}/{name}" for name in view.temps]
        self.temps += temps
        if full and count.done == count.inputs:
            self.finished.add(shard.index)
            self._finished_temps += temps  # a dead writer's temp there is still removed at close

    def _mark_poisoned(self, shard: Shard, view: RoundView) -> None:
        for task in shard.mark_poisoned(view, self._limit):
            view.failed.add(task)
            self._log.warning("task %s failed %d times; marked failed", task, len(view.errors[task]))

    def failures(self) -> List[Tuple[str, str]]:
        """(task, its last error) of every failed task of the round, listing the shards that have some."""
        found = []
        for index, count in sorted(self._counts.items()):
            if count.failed:
                shard = self.round.shard(index)
                view = shard.scan()
                for task in sorted((view.inputs & view.failed) - view.outputs):
                    found.append((task, shard.last_error(task, view.errors.get(task, []))))
        return found


def quick_scan(entries: List[str]) -> Tuple[Optional[RoundView], bool]:
    """(inputs, outputs, failure marks and temps by their suffixes alone; whether any claim
    is there), or (None, False) if the shard holds error records, which need a full parse.

    A poll of a busy shard then costs two or three suffix tests per name, not a parse.
    """
    view, claimed = RoundView(), False
    for name in entries:
        if name.startswith("."):
            if name.startswith(names.TEMP_PREFIX):
                view.temps.append(name)
        elif name.endswith(_IN):
            view.inputs.add(name[:-_IN_LEN])
        elif name.endswith(_OUT):
            view.outputs.add(name[:-_OUT_LEN])
        elif name.endswith(_SET_ASIDE):  # records fsmw requeue set aside: they no longer count
            continue
        elif ".err." in name:
            return None, False
        elif name.endswith(_FAILED):
            view.failed.add(name[:-_FAILED_LEN])
        elif ".claim." in name:
            claimed = True
    return view, claimed


_IN, _OUT, _FAILED = "." + names.IN, "." + names.OUT, "." + names.FAILED
_SET_ASIDE = ".requeued"
_IN_LEN, _OUT_LEN, _FAILED_LEN = len(_IN), len(_OUT), len(_FAILED)
