"""What a master hands back: the round's outputs, and the run's summary.

Property: :class:`Outputs` holds nothing per task: it lists one shard at a
time as it is iterated, so handing a round of a million outputs to
``process_output_files`` costs the memory of one shard's names; a shard it
cannot list raises StoreError (after retries), never drops its outputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Mapping, Optional, Tuple

from .._core import layout as names
from .._core.claims import TRANSIENT, asked_again
from .._core.errors import StoreError
from .._core.paths import as_path
from .._core.rounddir import RoundDir
from .._core.shard import Shard
from .._core.view import scan_names
from .counts import quick_scan


class Outputs(Mapping[str, Path]):
    """The round's outputs ``{task name: path}``, shard by shard (the order the inputs were
    written in, by ``shard_size``), by task name within a shard.

    Iterating lists one shard at a time; a lookup by name is answered from
    the shard last listed, else from an index of every output's shard made
    at the first such lookup.
    """

    def __init__(self, round_dir: RoundDir, count: int) -> None:
        self._round = round_dir
        self._count = count
        self._last: Tuple[Optional[Shard], frozenset] = (None, frozenset())
        self._index: Optional[Dict[str, int]] = None

    def _shard_outputs(self, shard: Shard) -> List[str]:
        try:  # a shard that exists: no error is "empty" here (an output left out would be lost)
            listing = asked_again(shard.fs.listdir, shard.path, retry=TRANSIENT, tries=5)
        except OSError as exc:
            raise StoreError(f"cannot list {shard.path} to hand over its outputs: "
                             f"{exc.strerror or exc}") from exc
        view = quick_scan(listing)[0] or scan_names(listing)  # suffix tests, unless records need a parse
        found = sorted(view.inputs & view.outputs)
        self._last = (shard, frozenset(found))
        return found

    def __iter__(self) -> Iterator[str]:
        for shard in self._round.each_shard():
            yield from self._shard_outputs(shard)

    def __getitem__(self, task: str) -> Path:
        shard, found = self._last
        if shard is None or task not in found:
            if self._index is None:
                self._index = {t: s.index for s in self._round.each_shard() for t in self._shard_outputs(s)}
            if task not in self._index:
                raise KeyError(task)
            shard = self._round.shard(self._index[task])
        return as_path(shard.file(task, names.OUT))

    def __len__(self) -> int:
        return self._count


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

    def tally(self, number: int, done: int, failures: List[Tuple[str, str]]) -> None:
        """Add round ``number``'s results: how many done, and (task, error) per failure."""
        self.rounds += 1
        self.done += done
        self.failed += [Failure(number, task, error) for task, error in failures]

    def __str__(self) -> str:
        lines = [f"{self.done} tasks done, {len(self.failed)} failed, {self.duplicates} "
                 f"duplicate results discarded, {self.rounds} round(s) in {self.wall_secs:.1f} s"]
        if self.stopped:
            lines[0] += "; STOPPED from outside before the end"
        lines += [f"  failed: round {f.round} task {f.task}: {f.error}" for f in self.failed]
        return "\n".join(lines)
