"""Records a worker leaves beside a task: errors, failure marks, duplicates.

Each record is a small ``key: value`` text written two-stage and published
no-clobber, so ``cat`` shows it whole and two writers never overwrite each
other.  An error record ``<task>.err.<g>`` is kept for every failed attempt
(an exception in ``process_file`` or a lease that expired); ``<task>.failed``
marks a task that used up ``max_attempts``; ``<task>.dup.<hex>`` records a
result that was discarded because another one was published first.

Property: the number of ``.err.*`` files of a task is the number of attempts
that failed, whoever wrote them and however they raced.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Mapping, Optional

from . import layout as names
from .atomic import write_new
from .owner import format_record, parse_record

def write_error(round_dir: Path, task: str, gen: int, facts: Mapping[str, object],
                body: str = "") -> Path:
    """Write the error record of attempt ``gen`` and return its path.

    One record per attempt: if the attempt already has one (its holder failed
    while a judge broke its claim), that one is kept.
    """
    path = round_dir / names.file_name(task, names.ERR, gen)
    write_new(path, format_record(facts, body))
    return path


def count_errors(round_dir: Path, task: str, upto: int) -> int:
    """How many error records ``task`` has, probing ``.err.1`` up to ``.err.<upto>`` and on.

    A fresh count (a few ``lstat`` calls) rather than an old listing's: the
    attempt limit must hold however stale the caller's listing was.
    """
    count, number = 0, 1
    while True:
        if os.path.lexists(round_dir / names.file_name(task, names.ERR, number)):
            count += 1
        elif number > upto:
            return count
        number += 1


def write_failed(round_dir: Path, task: str, attempts: int, last_error: bytes) -> bool:
    """Mark ``task`` failed; False if it already was."""
    text = last_error.decode("utf-8", errors="replace")
    header = f"attempts: {attempts}\n"
    return write_new(round_dir / names.file_name(task, names.FAILED), (header + text).encode())


def write_duplicate(round_dir: Path, task: str, facts: Mapping[str, object]) -> None:
    path = round_dir / f"{task}.{names.DUP}.{secrets.token_hex(4)}"
    write_new(path, format_record(facts))


def error_line(record: Optional[bytes]) -> str:
    """The one-line error text of an error or failure record."""
    if not record:
        return "unknown error"
    facts = parse_record(record)
    if facts.get("error"):
        return facts["error"]
    lines = facts[""].strip().splitlines()
    return lines[-1] if lines else "unknown error"
