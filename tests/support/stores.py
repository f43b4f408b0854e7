"""Stores built by hand for the tests, and looking at them.

A test builds the round it needs (:func:`make_round`), adds what other
workers would have left (:func:`foreign_claim`), and reads the result back
(:func:`listing`, :func:`names`).  :class:`Squarer` is the worker the
one-pass tests run on such rounds.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Tuple, Union

import fsmw
from fsmw._core.atomic import write_replace

PathLike = Union[str, Path]


def round_dir(store: PathLike, number: int = 1) -> Path:
    """The directory of round ``number`` of the store at ``store``."""
    return Path(store, f"round-{number:06d}")


def tasks_dir(store: PathLike, number: int = 1, shard: int = 0) -> Path:
    """The directory of shard ``shard`` of round ``number`` (a round of up to ``shard_size``
    tasks has all of them in shard 0)."""
    return Path(store, f"round-{number:06d}", f"shard-{shard:06d}")


def names(directory: PathLike, pattern: str = "*") -> List[str]:
    """The sorted names in ``directory`` matching ``pattern``."""
    return sorted(p.name for p in Path(directory).glob(pattern))


def listing(store: fsmw.Store, number: int = 1) -> List[str]:
    """The files of the round's first shard, without the workers' claim tokens."""
    return sorted(n for n in os.listdir(tasks_dir(store.root, number))
                  if not n.startswith((".journal.", ".worker.")))


def make_round(root: PathLike, tasks: Union[Mapping[str, object], Iterable[str]], number: int = 1, *,
               outputs: Iterable[str] = (), journal: Iterable[dict] = (), sealed: bool = True,
               closed: bool = False) -> fsmw.Store:
    """Round ``number`` of the store at ``root`` as a master (and its workers) left it.

    Args:
        tasks: the inputs: ``{name: value}`` (the input holds ``str(value)``),
            or task names (each input holds ``x``).
        outputs: tasks whose output exists (holding ``x``).
        journal: journal lines (dicts with ``host`` and ``pid``) as workers write
            them: one journal file per host and pid.
        sealed, closed: whether the round has its ``SEALED`` and ``CLOSED`` markers.

    Returns:
        The store.
    """
    store = fsmw.Store(root)
    inputs = dict(tasks) if isinstance(tasks, Mapping) else {name: "x" for name in tasks}
    tasks_dir(root, number).mkdir(parents=True)
    for name, value in inputs.items():
        write_replace(store.task_file(number, name, "in"), f"{value}".encode())
    for name in outputs:
        write_replace(store.task_file(number, name, "out"), b"x\n")
    files: Dict[Tuple[object, object], List[str]] = {}
    for line in journal:
        files.setdefault((line["host"], line["pid"]), []).append(json.dumps(line))
    for i, lines in enumerate(files.values()):
        (store.round_dir(number) / f".journal.node.{i}.0a1b2c3d").write_text("\n".join(lines) + "\n")
    if sealed:
        write_replace(store.marker(number, "SEALED"), f"tasks: {len(inputs)}\n".encode())
    if closed:
        write_replace(store.marker(number, "CLOSED"), b"next: STOP\n")
    return store


def foreign_claim(store: fsmw.Store, task: str, gen: int = 1, number: int = 1) -> Path:
    """Claim ``gen`` of ``task`` as another worker (9 on host ``elsewhere``) holds it: nobody touches it."""
    path = store.task_file(number, task, "claim", gen)
    path.write_bytes(b"host: elsewhere\npid: 1\nworker_id: 9\n")
    return path


class Squarer(fsmw.Worker):
    """A worker whose output is the square of the number in the input; it raises on those in ``fail``."""

    fail: Tuple[int, ...] = ()

    def process_file(self, input_path: Path, output_path: Path) -> None:
        n = int(input_path.read_text())
        if n in self.fail:
            raise ValueError(f"no square for {n}")
        output_path.write_text(str(n * n))
