"""A worker's way of claiming in one shard of a round: its token, linked to the names of the shard.

Workers claim pending tasks with :meth:`Claimer.claim` and take over stale,
overdue or poisoned ones with :meth:`Claimer.take_over`; both win a
generation by ``link``-ing the worker's token (see ``_core.token``).

Property: a pending task from a listing needs no re-check after a win: every
attempt leaves its claim, so a generation the listing did not show cannot
have been used since.  A takeover looks once more (two ``lstat``) whether the
task finished meanwhile, and gives the generation up if it did.
"""

from __future__ import annotations

from typing import Mapping, Optional

from .._core import layout as names
from .._core.claims import Claim
from .._core.shard import Shard, given_back_on_error
from .._core.system import Clock
from .._core.token import Token


class Claimer:
    """Claims generations of tasks in ``shard`` for one worker (one token per shard)."""

    def __init__(self, shard: Shard, facts: Mapping[str, object], clock: Clock) -> None:
        self.shard = shard
        self._facts = facts
        self._clock = clock
        self._token: Optional[Token] = None

    def claim(self, task: str, gen: int) -> Optional[Claim]:
        """Win generation ``gen`` of a pending ``task``, or None if another process has it."""
        if self._token is None:
            self._token = Token(self.shard, self._facts, self._clock)
        return self._token.claim(self.shard.file(task, names.CLAIM, gen), task, gen)

    def take_over(self, task: str, gen: int, kind: str) -> Optional[Claim]:
        """Win generation ``gen`` of a claimed ``task`` ("break" or "backup"), unless it finished."""
        won = self.claim(task, gen)
        if won is None:
            return None
        with given_back_on_error(won):
            finished = self.shard.finished(task)
        if finished:
            won.close()
            return None
        won.kind = kind
        return won

    def close(self) -> None:
        """Leave the shard: the token's name goes, its claims stay."""
        if self._token is not None:
            self._token.close()
            self._token = None
