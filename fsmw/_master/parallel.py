"""Writing a round's inputs in parallel, on a shared file system.

On NFS, Lustre or GlusterFS each input costs round trips to a server
(create, write, fsync, rename: milliseconds), not CPU, so a master writing
them one by one is bound by latency, and the workers wait for it.  The
master hands each write to one of ``threads`` threads instead; at most
``4 * threads`` writes are queued (their data held), so memory stays bounded
for rounds of any size.

Property: :meth:`ParallelWrites.finish` returns only once every input handed
to it is in place, and raises the first error of any write, so a round is
sealed only when all of its inputs exist.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Deque

THREADS = 8  # writes in flight on a shared file system


class ParallelWrites:
    """Runs writes on ``threads`` threads, keeping at most ``4 * threads`` queued."""

    def __init__(self, threads: int = THREADS) -> None:
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="fsmw-input")
        self._queued: Deque["Future[Any]"] = deque()
        self._limit = 4 * threads

    def submit(self, write: Callable[..., Any], *args: Any) -> None:
        """Queue ``write(*args)``; wait for the oldest write first if the queue is full."""
        while len(self._queued) >= self._limit:
            self._queued.popleft().result()  # raises that write's error here
        self._queued.append(self._pool.submit(write, *args))

    def finish(self) -> None:
        """Wait for every queued write; raise the first error."""
        try:
            while self._queued:
                self._queued.popleft().result()
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)
