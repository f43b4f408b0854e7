"""What a master hands back: the round's outputs, and the run's summary.

Property: :class:`Outputs` holds a sorted list of task names, not a path per
task, so handing a round of a million outputs to ``process_output_files``
costs no more memory than the names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, List, Mapping, Set

from .._core import layout as names
from .._core.rounddir import RoundDir
from .._core.view import RoundView


class Outputs(Mapping[str, Path]):
    """The round's outputs ``{task name: path}``, in task-name order.

    Paths are made on access, so a round of a million tasks costs a sorted
    list of names, not a million path objects held at once.
    """

    def __init__(self, round_dir: RoundDir, tasks: List[str]) -> None:
        self._dir = round_dir
        self._tasks = tasks
        self._known = frozenset(tasks)

    def __getitem__(self, task: str) -> Path:
        if task not in self._known:
            raise KeyError(task)
        return Path(self._dir.file(task, names.OUT))

    def __iter__(self) -> Iterator[str]:
        return iter(self._tasks)

    def __len__(self) -> int:
        return len(self._tasks)


@dataclass(frozen=True)
class Failure:
    """A task that used up its attempts."""

    round: int
    task: str
    error: str


@dataclass
class Summary:
    """What :meth:`Master.run` returns."""

    done: int = 0
    failed: List[Failure] = field(default_factory=list)
    duplicates: int = 0
    rounds: int = 0
    wall_secs: float = 0.0
    stopped: bool = False  # the stop file appeared before the last round was done

    def tally(self, round_dir: RoundDir, tasks: Set[str], view: RoundView) -> None:
        """Add a round's results, as of ``view`` (its last poll)."""
        self.rounds += 1
        self.done += len(tasks & view.outputs)
        for task in sorted((tasks & view.failed) - view.outputs):
            error = round_dir.last_error(task, view.errors.get(task, []))
            self.failed.append(Failure(round_dir.number, task, error))

    def __str__(self) -> str:
        lines = [f"{self.done} tasks done, {len(self.failed)} failed, {self.duplicates} "
                 f"duplicate results discarded, {self.rounds} round(s) in {self.wall_secs:.1f} s"]
        if self.stopped:
            lines[0] += "; STOPPED from outside before the end"
        lines += [f"  failed: round {f.round} task {f.task}: {f.error}" for f in self.failed]
        return "\n".join(lines)
