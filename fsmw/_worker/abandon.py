"""Ending an attempt whose result is no longer needed (issue 11, item 2).

An attempt's result is no longer needed once

* its claim was fenced: a judge broke it (the worker looked dead), or the
  master closed the round; the judge or the master wrote its error record;
* another attempt (a backup copy, or the worker that took over) published
  ``<task>.out``;
* ``STOP`` exists and the worker's ``on_stop`` is ``"interrupt"``.

Two processes end such attempts, and both end them here, the same way: the
worker, when the keeper's nudge (SIGUSR2) interrupts ``process_file``; and the
keeper, when the worker did not react within a grace and had to be killed.

* fenced, or published by another: a ``<task>.dup.<hex>`` record with
  ``reason: abandoned: ...``; the claim stays as the record of its
  generation (a fenced one is not ours to touch anyway);
* stopped: the claim is released (removed if still ours), so the task is
  pending again at once, as after SIGTERM.

Property: none of these counts as a failed attempt (no ``.err`` record is
written here), and a name that no longer points at our inode is never removed.
"""

from __future__ import annotations

from typing import Mapping, Optional

from .._core import layout as names
from .._core.claims import Claim
from .._core.shard import Shard
from .._core.system import lexists

FENCED = "our claim was broken meanwhile"
PUBLISHED = "a result was already published"
STOPPED = "the run was stopped (STOP)"


def why_not_needed(round_dir: Shard, claim: Claim, stop_file: Optional[str]) -> Optional[str]:
    """Why the result of ``claim``'s attempt is no longer needed, or None if it is.

    At most three ``stat`` calls: the claim (still ours?), ``<task>.out`` and,
    if ``stop_file`` is given, ``STOP``.

    Raises:
        OSError: the store could not be asked (then nobody can tell).
    """
    if not claim.still_mine():
        return FENCED
    if round_dir.has(names.file_name(claim.task, names.OUT)):
        return PUBLISHED
    if stop_file is not None and lexists(round_dir.fs, stop_file):
        return STOPPED
    return None


def abandon(round_dir: Shard, claim: Claim, why: str, facts: Mapping[str, object]) -> bool:
    """End ``claim``'s attempt because of ``why`` (see the module docstring).

    Returns:
        True if the claim was given back (the task is pending again).
    """
    if why == STOPPED:
        return claim.release()
    round_dir.write_duplicate(claim.task, dict(facts, attempt=claim.gen, reason=f"abandoned: {why}"))
    claim.close()
    return False
