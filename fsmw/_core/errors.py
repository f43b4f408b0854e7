"""The small exception hierarchy of fsmw.

Every error fsmw raises on purpose derives from :class:`FsmwError`.  Each one
mixes in the builtin whose meaning it shares, so callers may catch either, and
every message names the path involved and what to do about it.
"""

from __future__ import annotations


class FsmwError(Exception):
    """Base class of all errors raised by fsmw."""


class StoreError(FsmwError, OSError):
    """The store directory is missing, unusable or in a state fsmw refuses."""


class TaskNameError(FsmwError, ValueError):
    """A task name cannot be used as a file name in the store."""
