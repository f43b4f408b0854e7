"""Where a master's inputs go: written into shards, or hashed and compared when resuming.

A master writes each round's inputs through a *sink* (see ``resume`` for
when each is used): :class:`Fresh` writes every input into its place
(:class:`Placement`: the current shard until it holds ``shard_size``
inputs), :class:`Compare` only hashes, :class:`Diagnose` reads inputs to
name the ones that differ, and :class:`Check` compares what an unsealed
round holds and stages what it lacks.  Every sink folds each name and its
bytes into an order-independent :class:`Digest`.

Property: every shard but the last of a round holds exactly ``shard_size``
inputs, and the shards' order is the order the inputs were written in.
"""

from __future__ import annotations

import hashlib
from typing import Dict, List, Optional, Tuple

from .._core import layout as names
from .._core.atomic import read_small
from .._core.rounddir import RoundDir
from .._core.shard import Shard
from .parallel import ParallelWrites

MASK = (1 << 256) - 1
SHOWN = 5  # differences named in the error
DIGEST_KIND = "sha256-sum"


class Digest:
    """An order-independent digest of a round's inputs (names and bytes)."""

    def __init__(self) -> None:
        self.count = 0
        self._sum = 0

    def add(self, name: str, data: bytes) -> None:
        h = hashlib.sha256(name.encode("utf-8") + b"\0")
        h.update(data)
        self._sum = (self._sum + int.from_bytes(h.digest(), "big")) & MASK
        self.count += 1

    @property
    def text(self) -> str:
        return f"{DIGEST_KIND} {self._sum:064x}"

    def sealed_record(self) -> str:
        """What ``SEALED`` holds: the number of tasks and the digest."""
        return f"tasks: {self.count}\ndigest: {self.text}\n"


class Placement:
    """Where the master writes each input: the current shard until it holds ``size`` inputs.

    Shard i+1 is made only once shard i is full, so every shard but the
    last holds exactly ``size`` inputs, and the order of the shards is the
    order of the inputs (see ``_core.rounddir``).
    """

    def __init__(self, round_dir: RoundDir, size: int, index: int = -1, count: int = 0,
                 make: bool = True) -> None:
        self._round = round_dir
        self._size = size
        self._make = make
        self.made: List[Shard] = []
        self._shard = round_dir.shard(index) if index >= 0 else None
        self._count = count if index >= 0 else size

    def next(self) -> Shard:
        """The shard of the next input (made when it is a new one)."""
        if self._shard is None or self._count >= self._size:
            self._shard = self._round.shard(0 if self._shard is None else self._shard.index + 1)
            self._count = 0
            if self._make:
                self._shard.create()
                self.made.append(self._shard)
        self._count += 1
        return self._shard


class Sink:
    """Where ``Master.create_input_file`` sends each input, once validated."""

    def __init__(self, round_dir: RoundDir, placement: Placement) -> None:
        self.round_dir = round_dir
        self.digest = Digest()
        self.placement = placement

    def put(self, name: str, data: bytes) -> str:
        """Take one input; return its final path."""
        self.digest.add(name, data)
        return self.placement.next().file(name, names.IN)


class Fresh(Sink):
    """A new round: write every input (temp, [fsync], rename) into the next place, in this
    thread or, given ``writes`` (a shared file system), on its threads."""

    def __init__(self, round_dir: RoundDir, shard_size: int, fsync: bool,
                 writes: Optional[ParallelWrites] = None) -> None:
        super().__init__(round_dir, Placement(round_dir, shard_size))
        self._fsync = fsync
        self._writes = writes

    def put(self, name: str, data: bytes) -> str:
        self.digest.add(name, data)
        shard = self.placement.next()
        if self._writes is None:
            return shard.write_input(name, data, self._fsync)
        self._writes.submit(shard.write_input, name, data, self._fsync)
        return shard.file(name, names.IN)

    def finish(self, quietly: bool = False) -> None:
        """Wait until every input is in place; raise the first failed write's error unless ``quietly``."""
        if self._writes is not None:
            try:
                self._writes.finish()
            except Exception:
                if not quietly:
                    raise


class Compare(Sink):
    """A sealed round with a digest: hash only; nothing is read or written."""


class Diagnose(Sink):
    """Read inputs and compare their bytes until :data:`SHOWN` differences are found."""

    def __init__(self, round_dir: RoundDir, inputs: Dict[str, int], placement: Placement) -> None:
        super().__init__(round_dir, placement)
        self.inputs = inputs  # task -> the index of its shard
        self.changed: List[str] = []

    def put(self, name: str, data: bytes) -> str:
        if name in self.inputs and len(self.changed) <= SHOWN:  # reads stop after a few (and one more)
            self._compare(name, data)
        return super().put(name, data)

    def _compare(self, name: str, data: bytes) -> None:
        path = self.round_dir.shard(self.inputs[name]).file(name, names.IN)
        there = read_small(path, limit=len(data) + 1, fs=self.round_dir.fs)
        if there == data:
            return
        if len(self.changed) < SHOWN:
            size = "no" if there is None else f"more than {len(data)}" if len(there) > len(data) \
                else str(len(there))
            self.changed.append(f"{name} ({size} bytes in the store, {len(data)} now)")
        elif len(self.changed) == SHOWN:
            self.changed.append("...")


class Check(Diagnose):
    """An unsealed round (or one sealed without a digest): compare what exists, stage what is missing.

    Missing inputs go after the existing ones: into the last shard until it
    is full, then into new shards (removed again if the check fails).
    """

    def __init__(self, round_dir: RoundDir, inputs: Dict[str, int], last: Tuple[int, int],
                 shard_size: int, fsync: bool, write: bool) -> None:
        super().__init__(round_dir, inputs, Placement(round_dir, shard_size, *last))
        self._fsync = fsync
        self._write = write
        self._staged: List[Tuple[str, Shard, str]] = []  # (temp path, shard, task name)

    def put(self, name: str, data: bytes) -> str:
        self.digest.add(name, data)
        if name in self.inputs:
            self._compare(name, data)
            return self.round_dir.shard(self.inputs[name]).file(name, names.IN)
        if not self._write:
            return self.round_dir.join(names.file_name(name, names.IN))  # a mismatch, raised later
        shard = self.placement.next()
        self._staged.append((shard.temp(data, self._fsync), shard, name))
        return shard.file(name, names.IN)

    def publish(self) -> int:
        """Rename the staged inputs into place; how many there were."""
        for tmp, shard, name in self._staged:
            self.round_dir.fs.rename(tmp, shard.file(name, names.IN))
        return len(self._staged)

    def discard(self) -> None:
        for tmp, shard, _ in self._staged:
            shard.unlink(tmp.rpartition("/")[2])
        self._staged = []
        for shard in self.placement.made:
            try:
                self.round_dir.fs.rmdir(shard.path)
            except OSError:
                pass


def round_inputs(round_dir: RoundDir) -> Tuple[Dict[str, int], Tuple[int, int]]:
    """Every input of the round ({task: shard index}, one listing per shard), and
    (the last shard's index, how many inputs it holds), or (-1, 0) if there is none."""
    inputs: Dict[str, int] = {}
    last = (-1, 0)
    for shard in round_dir.each_shard():
        found = shard.scan().inputs
        inputs.update(dict.fromkeys(found, shard.index))
        last = (shard.index, len(found))
    return inputs, last
