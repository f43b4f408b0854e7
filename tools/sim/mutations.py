"""Mutations: small breaks of fsmw that the simulation must catch, one per property.

Each is a list of ``(object, attribute, replacement)`` patched in for the
duration of a run (:func:`mutated`); ``tests/sim/test_mutations.py`` applies
them with pytest's ``monkeypatch`` and checks that a bounded number of
schedules finds a failing seed.

* ``no-fencing``: :meth:`Claim.still_mine` always True: a holder whose claim
  was broken (or whose round was closed) still publishes;
* ``clobber-publish``: outputs published with ``rename`` instead of ``link``:
  a second result replaces the first;
* ``deaf-judge``: the lease judge ignores heartbeats (it keys a claim on its
  inode only): live claims are broken;
* ``no-recovery``: workers never judge claims (no breaks, no backups): a
  crashed worker's task is never redone and the run never ends.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from fsmw._core import claims, lease, shard
from fsmw._worker import recovery


def _clobbering_publish(tmp: Any, final: Any, fs: Any, local: bool = False) -> bool:
    fs.rename(tmp, final)
    return True


MUTATIONS: Dict[str, List[Tuple[Any, str, Any]]] = {
    "no-fencing": [(claims.Claim, "still_mine", lambda self, fresh=False: True)],
    "clobber-publish": [(shard, "publish", _clobbering_publish)],
    "deaf-judge": [(lease, "heartbeat_key", lambda st: (st.st_ino, 0, 0))],
    "no-recovery": [(recovery.Recovery, "_judge_claims", lambda self, view, claimer, *rest: None)],
}


def apply(name: str, setattr_: Callable[[Any, str, Any], None]) -> None:
    """Patch mutation ``name`` in with ``setattr_`` (pytest's ``monkeypatch.setattr``, say)."""
    if name not in MUTATIONS:
        raise ValueError(f"unknown mutation {name!r}; known: {', '.join(sorted(MUTATIONS))}")
    for owner, attr, value in MUTATIONS[name]:
        setattr_(owner, attr, value)


@contextlib.contextmanager
def mutated(name: Optional[str]) -> Iterator[None]:
    """Run with mutation ``name`` patched in (None: fsmw as it is)."""
    if name is None:
        yield
        return
    saved = [(owner, attr, owner.__dict__[attr]) for owner, attr, _ in MUTATIONS.get(name, [])]
    apply(name, setattr)
    try:
        yield
    finally:
        for owner, attr, value in saved:
            setattr(owner, attr, value)
