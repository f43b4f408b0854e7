"""Names of the files in a round directory, and how to read them back.

Every file fsmw writes for a task is ``<task><suffix>``; the suffixes are::

    .in            the input, written by the master
    .claim.<g>     a worker's claim, generation g (its mtime is the heartbeat)
    .out           the published output
    .err.<g>       the record of a failed attempt
    .failed        the task gave up after max_attempts
    .dup.<hex>     a late or backup result that was discarded

Markers have no dot (``SEALED``, ``CLOSED``) so they can never be taken for a
task file.  fsmw's own hidden files start with a dot, which no task name may:
temp files ``.tmp.<host>.<pid>.<hex><n>``, claim tokens
``.worker.<host>.<pid>.<hex>`` and journals ``.journal.<host>.<pid>.<hex>``.
Any other name is foreign and ignored.  This module is the one place that
spells a name; :class:`~fsmw._core.store.Store` and
:class:`~fsmw._core.rounddir.RoundDir` join them to paths.  Parsing only looks at the last one or two
dot-separated fields, so it costs a few string operations per entry.

Property: :func:`check_task_name` accepts only names that round-trip through
:func:`parse` unchanged and whose longest file name fits the file system.
"""

from __future__ import annotations

import re
from typing import NamedTuple, Optional

from .errors import TaskNameError

IN, OUT, FAILED, CLAIM, ERR, DUP = "in", "out", "failed", "claim", "err", "dup"
TEMP_PREFIX = ".tmp."
TOKEN_PREFIX = ".worker."
JOURNAL_PREFIX = ".journal."
SEALED = "SEALED"
CLOSED = "CLOSED"
REQUEUED = "REQUEUED"
STOP = "STOP"
ROUND_PREFIX = "round-"
SHARD_PREFIX = "shard-"

_PLAIN = frozenset((IN, OUT, FAILED))
_NUMBERED = frozenset((CLAIM, ERR))
# Room kept for the longest suffix fsmw appends (".claim.<gen>", ".dup.<hex>").
SUFFIX_ROOM = 24
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
_CONTROL = re.compile("[\x00-\x1f\x7f]")


class Entry(NamedTuple):
    """One parsed file name of a round directory."""

    task: str
    kind: str
    gen: Optional[int]


def parse(name: str) -> Optional[Entry]:
    """Parse a round-directory file name; ``None`` for temps and foreign files."""
    if name.startswith("."):
        return None
    head, dot, last = name.rpartition(".")
    if not dot or not head:
        return None
    if last in _PLAIN:
        return Entry(head, last, None)
    task, dot, kind = head.rpartition(".")
    if not dot or not task:
        return None
    if kind in _NUMBERED and last.isdigit() and last.isascii():
        return Entry(task, kind, int(last))
    if kind == DUP and _is_hex(last):
        return Entry(task, DUP, None)
    return None


def _is_hex(text: str) -> bool:
    return text.isascii() and all(c in "0123456789abcdef" for c in text)


def file_name(task: str, kind: str, gen: Optional[int] = None) -> str:
    """The file name for ``task`` of ``kind`` (``gen`` for claims and errors)."""
    if kind in _NUMBERED:
        return f"{task}.{kind}.{gen}"
    return f"{task}.{kind}"


def dup_name(task: str, suffix: str) -> str:
    """The name of a discarded result's record: ``<task>.dup.<hex>``."""
    return f"{task}.{DUP}.{suffix}"


def private_name(prefix: str, host: str, pid: int, suffix: str) -> str:
    """A name of fsmw's own (temp stem, token, journal) unique to one writer."""
    return f"{prefix}{host}.{pid}.{suffix}"


def safe_host(host: str) -> str:
    """A host name reduced to characters safe in a file name (at most 32)."""
    return _UNSAFE.sub("_", host.split(".")[0])[:32] or "host"


def is_temp(name: str) -> bool:
    """True for names of fsmw temp files (the one helper every scan uses)."""
    return name.startswith(TEMP_PREFIX)


def is_journal(name: str) -> bool:
    return name.startswith(JOURNAL_PREFIX)


def round_name(number: int) -> str:
    return f"{ROUND_PREFIX}{number:06d}"


def round_number(name: str) -> Optional[int]:
    """The number of a round directory name, or ``None``."""
    return _numbered(name, ROUND_PREFIX)


def shard_name(index: int) -> str:
    return f"{SHARD_PREFIX}{index:06d}"


def shard_index(name: str) -> Optional[int]:
    """The index of a shard directory name (``shard-000042``: 42), or ``None``."""
    return _numbered(name, SHARD_PREFIX)


def _numbered(name: str, prefix: str) -> Optional[int]:
    if not name.startswith(prefix):
        return None
    digits = name[len(prefix):]  # at least 6 digits, no zero before a 7th (as the names are made)
    if len(digits) < 6 or not (digits.isdigit() and digits.isascii()):
        return None
    if len(digits) > 6 and digits[0] == "0":
        return None
    return int(digits)


def check_task_name(name: object, name_max: int = 255) -> str:
    """Return ``name`` if it is a valid task name, else raise TaskNameError.

    Args:
        name: the candidate task name.
        name_max: the file system's limit on a file name, in bytes.

    Raises:
        TaskNameError: naming the offending name and the rule it breaks.
    """
    if not isinstance(name, str):
        raise TaskNameError(f"task name {name!r} is not a str")
    problem = _name_problem(name, name_max)
    if problem:
        raise TaskNameError(f"invalid task name {name!r}: {problem}")
    return name


def _name_problem(name: str, name_max: int) -> Optional[str]:
    if not name:
        return "it is empty"
    if "/" in name or "\0" in name:
        return "it contains '/' or NUL"
    if _CONTROL.search(name):
        return "it contains a control character"
    if name.startswith("."):
        return "it starts with '.' (reserved for fsmw's temp files; '.' and '..' are directories)"
    if name.strip() != name:
        return "it starts or ends with white space"
    limit = name_max - SUFFIX_ROOM
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        return "it cannot be encoded as UTF-8"
    if size > limit:
        return f"it is {size} bytes long; at most {limit} fit with fsmw's suffixes"
    if parse(name) is not None:
        return "it ends like one of fsmw's own file suffixes (.in, .out, .failed, .claim.N, .err.N, .dup.X)"
    return None
