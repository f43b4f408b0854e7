"""The store directory: the one object that turns names into paths, and the one store check.

Layout (readable with ``ls -a``; names are spelled in ``layout``)::

    STORE/STOP                       the run is over: workers exit, the master returns
    STORE/round-000001/              one directory per round, never reused
        SEALED                       the master has written every input
        CLOSED                       the round is over; says what comes next
        REQUEUED                     fsmw requeue reopened tasks (workers look again)
        .journal.<host>.<pid>.<hex>  a worker's attempt journal
        shard-000000/                the first shard_size tasks, then shard-000001/, ...
            <task>.in / .claim.<g> / .out / .err.<g> / .failed / .dup.<hex>
            .tmp.<host>.<pid>.<hex><n>   a file being written (two-stage creation)
            .worker.<host>.<pid>.<hex>   a worker's claim token (claims are links to it)

Property: a round's files live only in that round's directory, so a late file
of round k can never satisfy round k+1.  Paths are built here, in
:class:`~fsmw._core.rounddir.RoundDir` and in :class:`~fsmw._core.shard.Shard`
only, and every call goes through the store's ``fs`` (see ``system``).
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Mapping, Optional

from . import layout as names
from .atomic import write_replace
from .errors import StoreError
from .records import format_record
from .rounddir import RoundDir
from .shard import listdir
from .system import REAL_FS, W_OK_X_OK, FileSystem, PathLike, is_dir, lexists


class Store:
    """Owns every path under a store directory.

    Args:
        root: the store directory (on a file system all nodes share).
        fs: the file system to reach it through (the real one by default).
    """

    def __init__(self, root: PathLike, fs: Optional[FileSystem] = None) -> None:
        self.root = Path(root)
        self.fs = fs or REAL_FS
        self._name_max: Optional[int] = None

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    # -- paths ------------------------------------------------------------
    def path(self, name: str) -> str:
        """The path of ``name`` in the store's root."""
        return f"{self.root}/{name}"

    @property
    def stop_file(self) -> Path:
        return self.root / names.STOP

    def round_dir(self, number: int) -> Path:
        return self.root / names.round_name(number)

    def marker(self, number: int, which: str) -> Path:
        return self.round_dir(number) / which

    def task_file(self, number: int, task: str, kind: str, gen: Optional[int] = None) -> Path:
        """The path of ``task``'s file of ``kind`` in round ``number``: in the shard that holds
        its input, or (no input yet) in the round's first shard."""
        found = self.round(number).find(task)
        return Path(found.path if found is not None else self.round(number).shard(0).path,
                    names.file_name(task, kind, gen))

    def round(self, number: int) -> RoundDir:
        """Round ``number``'s directory: its paths, listings and records."""
        return RoundDir(f"{self.root}/{names.round_name(number)}", number, self.fs)

    # -- the stop file ------------------------------------------------------
    def stopped(self) -> bool:
        return lexists(self.fs, self.stop_file)

    def write_stop(self, facts: Mapping[str, object]) -> None:
        write_replace(self.stop_file, format_record(facts), fs=self.fs)

    # -- the one store check -------------------------------------------------
    def name_max(self) -> int:
        if self._name_max is None:
            try:
                self._name_max = self.fs.pathconf(self.root, "PC_NAME_MAX")
            except (OSError, ValueError):
                self._name_max = 255
        return self._name_max

    def check(self, create: bool = False, writable: bool = True, may_appear: bool = False) -> bool:
        """Make sure the store is a usable directory; True if it exists now.

        Args:
            create: make it if it is missing (the master).
            writable: it must be writable by this user (not for reading tools).
            may_appear: a missing store is fine while its parent exists (a
                worker started before the master); returns False then.

        Raises:
            StoreError: naming the store and what is wrong with it.
        """
        root, fs = self.root, self.fs
        exists = lexists(fs, root)
        if not exists and (create or may_appear) and not is_dir(fs, root.parent):
            verb = "create store" if create else "wait for store"
            raise StoreError(f"cannot {verb} {root}: its parent directory {root.parent} "
                             f"does not exist")
        if not exists and create:
            try:
                fs.mkdir(root)
            except FileExistsError:
                pass
            except OSError as exc:
                raise StoreError(f"cannot create store {root}: {exc.strerror}") from exc
        elif not exists and may_appear:
            return False
        if not is_dir(fs, root):
            what = "is not a directory" if lexists(fs, root) else "does not exist"
            raise StoreError(f"store {root} {what}")
        if writable and not fs.access(root, W_OK_X_OK):
            raise StoreError(f"store {root} is not writable by this user (uid {fs.getuid()})")
        return True

    # -- listings ---------------------------------------------------------
    def rounds(self) -> List[int]:
        """Numbers of the round directories, ascending (one listing of the root)."""
        found = (names.round_number(n) for n in self.root_names())
        return sorted(n for n in found if n is not None)

    def root_names(self) -> List[str]:
        return listdir(self.fs, self.root)

    def listing(self, number: int) -> List[str]:
        """The names in round ``number``'s own directory (markers, shards, journals)."""
        return listdir(self.fs, self.round_dir(number))

    def duplicates(self, number: int) -> int:
        """How many discarded results round ``number`` holds (one listing per shard)."""
        return sum(1 for shard in self.round(number).each_shard() for name in shard.listing()
                   if ".dup." in name and _is_duplicate(name))  # a parse only where it may be one


def _is_duplicate(name: str) -> bool:
    entry = names.parse(name)
    return entry is not None and entry.kind == names.DUP
