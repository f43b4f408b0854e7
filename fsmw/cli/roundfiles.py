"""A whole round as the tools read it: every shard's listing merged into one view.

The master and the workers never hold a whole round (see ``_core.rounddir``);
``fsmw status``, ``report``, ``requeue`` and ``clean`` do, one listing per
shard, and then name files by task, so :class:`RoundFiles` remembers each
task's shard and turns a task's file name into its path.

Property: for a round of any layout (sharded, or written before shards),
``RoundFiles`` answers with the paths the master and the workers use.
"""

from __future__ import annotations

from typing import Dict, List, Optional

from .._core import layout as names
from .._core.atomic import read_small, unlink_quietly
from .._core.rounddir import RoundDir
from .._core.shard import Shard
from .._core.view import RoundView, scan_names


class RoundFiles:
    """Round ``round_dir`` with the shard of each task it has seen."""

    def __init__(self, round_dir: RoundDir) -> None:
        self.round = round_dir
        self.number, self.fs, self.path = round_dir.number, round_dir.fs, round_dir.path
        self._shard_of: Dict[str, Shard] = {}
        self.shards: List[Shard] = []

    def listing(self) -> List[str]:
        """The round's own directory (markers, shards, journals)."""
        return self.round.listing()

    def scan(self, entries: Optional[List[str]] = None) -> RoundView:
        """Every shard's listing, merged (``sealed``/``closed`` from the round's own directory)."""
        entries = self.round.listing() if entries is None else entries
        self.shards = [self.round.shard(i) for i in self.round.shards(entries)]
        names_seen: List[str] = []
        for shard in self.shards:
            listed = shard.listing()
            for name in listed:
                entry = names.parse(name)
                if entry is not None:
                    self._shard_of.setdefault(entry.task, shard)
            names_seen += listed
        view = scan_names(names_seen)
        view.sealed, view.closed = names.SEALED in entries, names.CLOSED in entries
        return view

    def shard(self, task: str) -> Shard:
        """The shard of ``task`` (the first shard if the round never showed it)."""
        found = self._shard_of.get(task)
        return found if found is not None else self.round.shard(self.shards[0].index if self.shards else 0)

    def file(self, task: str, kind: str, gen: Optional[int] = None) -> str:
        return self.shard(task).file(task, kind, gen)

    def join(self, name: str) -> str:
        """The path of ``name``: a task's file in its shard, anything else in the round's directory."""
        entry = names.parse(name)
        return self.shard(entry.task).join(name) if entry is not None else self.round.join(name)

    def read(self, name: str) -> Optional[bytes]:
        return read_small(self.join(name), fs=self.fs)

    def unlink(self, name: str) -> None:
        unlink_quietly(self.join(name), self.fs)
