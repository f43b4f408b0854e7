"""Pieces every ``fsmw doctor`` probe module shares: child processes, the result type, the FS clock."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path
from typing import Any, Callable, Dict, List

from ..._core import fsinfo
from ..._core.errors import StoreError

WAIT_SECS = 5.0
_mp = multiprocessing.get_context("fork")
Result = Dict[str, Any]


class _Children:
    """Child processes of a probe: killed (if still alive) and reaped on exit."""

    def __init__(self) -> None:
        self.procs: List[Any] = []

    def start(self, target: Callable[..., None], *args: Any) -> Any:
        proc = _mp.Process(target=target, args=args, daemon=True)
        proc.start()
        self.procs.append(proc)
        return proc

    def __enter__(self) -> "_Children":
        return self

    def __exit__(self, *exc_info: object) -> None:
        for proc in self.procs:
            if proc.is_alive():
                proc.kill()
            proc.join(10)


def fs_now(work: Path) -> float:
    """The file system's clock now (``_core.fsinfo.fs_now`` in the probe directory)."""
    now = fsinfo.fs_now(work)
    if now is None:
        raise StoreError(f"{work}: cannot create a probe file to read the file system's clock")
    return now


_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC


def _create(path: Path) -> None:
    os.close(os.open(path, _CREATE, 0o600))


def _ok(ok: bool, summary: str, **facts: Any) -> Result:
    return dict(ok=ok, summary=("ok: " if ok else "BROKEN: ") + summary, **facts)
