"""One round directory: its markers and its shards.

Layout of round k (names are spelled in ``layout``)::

    round-k/SEALED            the master has written every input (tasks: N, digest)
    round-k/CLOSED            the round is over; says what comes next
    round-k/REQUEUED          rewritten by ``fsmw requeue``: workers look at every shard again
    round-k/shard-000000/     the first ``shard_size`` inputs, in the order they were written,
    round-k/shard-000001/     the next ones, and so on (see ``shard``)
    round-k/.journal.*        the workers' attempt journals

The master fills one shard at a time and makes shard i+1 once shard i has
been given ``shard_size`` inputs, so the shards' order is the inputs' order.
A shard may still be filling after shard i+1 exists (inputs written on
threads, or staged by a resumed master), so a shard counts as *finished*
only once the round is sealed and each of its inputs has an output or a
failure mark; it then stays finished (only ``fsmw requeue`` reopens a task,
and it says so in ``REQUEUED``).  A round written by an fsmw from before shards (task files in
the round directory itself) is read as one shard, :data:`~fsmw._core.shard.LEGACY`.

Property: every listing the master, a worker or a tool makes is of one shard
or of the round's own directory (markers, shards and journals: about one name
per ``shard_size`` tasks), so none grows with the round.
"""

from __future__ import annotations

from typing import Iterator, List, Tuple

from . import layout as names
from .atomic import read_small, unlink_quietly, write_replace
from .shard import LEGACY, Shard, listdir
from .system import FileSystem, lexists

_IN = "." + names.IN


class RoundDir:
    """The directory of round ``number`` at ``path``, reached through ``fs``."""

    def __init__(self, path: str, number: int, fs: FileSystem) -> None:
        self.path = path
        self.number = number
        self.fs = fs

    def __repr__(self) -> str:
        return f"RoundDir({self.path!r})"

    # -- the round's own directory ---------------------------------------------
    def join(self, name: str) -> str:
        return f"{self.path}/{name}"

    def has(self, name: str) -> bool:
        return lexists(self.fs, self.join(name))

    def read(self, name: str) -> "bytes | None":
        return read_small(self.join(name), fs=self.fs)

    def unlink(self, name: str) -> None:
        unlink_quietly(self.join(name), self.fs)

    def listing(self) -> List[str]:
        """The names in the round's own directory (markers, shards, journals)."""
        return listdir(self.fs, self.path)

    def create(self) -> None:
        """Make the directory; FileExistsError if it exists (a round is never reused)."""
        self.fs.mkdir(self.path)

    def write_marker(self, which: str, text: str) -> None:
        write_replace(self.join(which), text.encode(), fs=self.fs)

    # -- shards -------------------------------------------------------------------
    def shard(self, index: int) -> Shard:
        return Shard(self.path, self.number, index, self.fs)

    def shards(self, entries: "List[str] | None" = None) -> List[int]:
        """The indices of the round's shards, ascending, from ``entries`` (default: a listing).

        A round written before shards (inputs in the round's own directory)
        has one shard, :data:`LEGACY`.
        """
        if entries is None:
            entries = self.listing()
        found = sorted(i for i in map(names.shard_index, entries) if i is not None)
        if not found and any(name.endswith(_IN) and names.parse(name) is not None for name in entries):
            return [LEGACY]
        return found

    def each_shard(self) -> Iterator[Shard]:
        for index in self.shards():
            yield self.shard(index)

    def find(self, task: str) -> "Shard | None":
        """The shard that holds ``task``'s input (one ``lstat`` per shard), or None.

        For tools and tests, which name a task; the master and the workers
        always know a task's shard from the listing they found it in.
        """
        for shard in self.each_shard():
            if shard.has(names.file_name(task, names.IN)):
                return shard
        return None

    # -- closing: the one home of "closed means closed" ---------------------------
    def close(self, text: str, closed_by: str, skip: "frozenset[int]" = frozenset()
              ) -> List[Tuple[Shard, List[str], List[str]]]:
        """Write ``CLOSED``, then end every attempt still live on a task without a result.

        Returns, shard by shard (those in ``skip``, which the caller knows to
        be finished, are not listed): the shard, its temp files, and the tasks
        whose attempts were ended.  Ending an attempt fences its holder
        (``Shard.end_live_attempts``), so a late result of a closed round is
        discarded as ``.dup``, never published as ``.out``.
        """
        self.write_marker(names.CLOSED, text + "\n")
        found = []
        for index in self.shards():
            if index not in skip:
                shard = self.shard(index)
                view, ended = shard.end_live_attempts(closed_by)
                found.append((shard, view.temps, ended))
        return found
