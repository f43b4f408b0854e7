"""``fsmw.Executor``: a ``concurrent.futures.Executor`` whose calls are fsmw tasks.

Protocol: ``submit`` pickles and seals the call at once (so an unpicklable
or non-importable function fails in the caller, see ``calls``) and queues
it.  A master thread (a :class:`~fsmw._tasks.taskmaster.TaskMaster`) writes
the queued calls as one round, waiting first until submitting pauses
(``linger_secs``, or the end of a ``map``), and resolves each future at the
poll that sees its output or failure mark.  Calls submitted while a round
runs form the next round, begun as soon as that one is over.  ``shutdown``
lets the queued calls run (or cancels them with ``cancel_futures``), then
the master writes ``STOP``: the workers (``fsmw worker``) exit with code 0.

Property: every future ends: with the call's result, with the exception it
raised on its last attempt (its remote traceback as ``__cause__``), with
:class:`fsmw.TaskFailed` when it failed another way, or with the error that
ended the run (the store failed, or ``fsmw stop``).
"""

from __future__ import annotations

import itertools
import secrets
import logging
import threading
import time
import weakref
from collections import deque
from concurrent.futures import Executor as _Executor, Future
from typing import Any, Callable, Deque, Dict, Iterable, Iterator, List, Optional, Tuple

from .. import _options
from .calls import TaskFailed, dump_call, exception_from_failure, load_result, run_chunk
from .sealed import CALL, seal
from .local import LocalWorkers
from .taskmaster import TaskMaster

_log = logging.getLogger("fsmw.executor")
_live: "weakref.WeakSet[Executor]" = weakref.WeakSet()
Queued = Tuple["Future[Any]", str, bytes]


class _CallMaster(TaskMaster):
    def __init__(self, executor: "Executor", store: Any, options: Any, **kwargs: Any) -> None:
        super().__init__(store, options, **kwargs)
        self._executor = executor
        self.futures: Dict[str, "Future[Any]"] = {}

    def create_input_files(self) -> None:
        batch = [(f, t, b) for f, t, b in self._executor._next_batch() if f.set_running_or_notify_cancel()]
        for future, task, _ in batch:  # all known before a write can fail: the run's end fails them
            self.futures[task] = future
            self.expects(task)
        key = self.key()
        for _, task, body in batch:
            self.create_input_file(task, seal(key, CALL, self.scope(task), body))

    def process_output_files(self, outputs: Any) -> bool:
        for task, why in self.settle_round().items():
            self._end(task, TaskFailed(f"task {task}: {why}"))
        return self._executor._more_work()

    def task_done(self, task: str, output: bytes, where: str) -> None:
        try:
            value = load_result(self.key(), self.scope(task), output, where)
        except Exception as exc:  # a rejected seal, or a result that does not unpickle here
            self._end(task, exc)
            return
        future = self.futures.pop(task)
        future.set_result(value)

    def task_failed(self, task: str, record: bytes, where: str) -> None:
        self._end(task, exception_from_failure(self.key(), self.scope(task), record, where))

    def _end(self, task: str, exc: BaseException) -> None:
        future = self.futures.pop(task, None)
        if future is not None and not future.done():
            future.set_exception(exc)


class _ShutDown(RuntimeError):
    """The run ended because ``shutdown`` ended it (not a failure, not ``fsmw stop``)."""


class Executor(_Executor):
    """Runs calls as fsmw tasks in ``store`` (see ``docs/generic-tasks.md``).

    Args:
        store: the store directory, on a file system the workers share; one run per store.
        options: an :class:`fsmw.Options`; keyword options override its fields.  The
            Executor always closes a round a crashed Executor left open as abandoned
            (its futures are gone with it); unless given, ``progress`` is False and
            ``master_idle_sleep_secs`` 1.0 (results come back within about a second).
        local_workers: start this many ``fsmw worker`` processes on this machine, in
            their own session, stopped at ``shutdown`` (workers elsewhere are yours).
        linger_secs: how long submitting must pause before queued calls are written
            as a round (at most ``MAX_LINGER_SECS`` after the first of them).
    """

    MAX_LINGER_SECS = 1.0

    def __init__(self, store: Any, options: Optional[_options.Options] = None, *, local_workers: int = 0,
                 linger_secs: float = 0.05, **kwargs: Any) -> None:
        if options is None:
            kwargs = dict(dict(progress=False, master_idle_sleep_secs=1.0), **kwargs)
        kwargs["abandon_open_round"] = True  # a crashed Executor's futures cannot be resumed
        self._master = _CallMaster(self, store, options, **kwargs)
        self._master.key()  # makes the store and its key now: errors belong here
        self._cond = threading.Condition()
        self._queue: Deque[Queued] = deque()
        self._names = itertools.count()
        # Task names unique to this Executor: a payload of another Executor's round (even one
        # whose round number was freed by renaming its directory away) names no task of ours.
        self._prefix = secrets.token_hex(4)
        self._holds = 0  # map() calls still submitting
        self._shutdown = False
        self._ended: Optional[BaseException] = None  # why the run ended, once it has
        self._linger = linger_secs
        self._workers = LocalWorkers(str(self._master.store.root), local_workers, self._master.options)
        self._thread = threading.Thread(target=self._run, name="fsmw-executor")
        self._thread.start()
        _live.add(self)
        self._workers.start()

    @property
    def store(self) -> Any:
        return self._master.store

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> "Future[Any]":
        body = dump_call(fn, args, kwargs)  # NotImportable here, in the caller
        with self._cond:
            self._check_open()
            future: "Future[Any]" = Future()
            self._queue.append((future, f"c{self._prefix}-{next(self._names):09d}", body))
            self._cond.notify_all()
        return future

    def map(self, fn: Callable[..., Any], *iterables: Iterable[Any], timeout: Optional[float] = None,
            chunksize: int = 1) -> Iterator[Any]:
        if chunksize < 1:
            raise ValueError("chunksize must be >= 1")
        items = list(zip(*iterables))  # noqa: B905  first: they may wait on this executor's results
        with self._cond:
            self._holds += 1  # the round waits until every call of the map is queued
        try:
            if chunksize == 1:
                return super().map(fn, *zip(*items), timeout=timeout)  # noqa: B905
            chunks = list(_chunks(iter(items), chunksize))
            return _flatten(super().map(run_chunk, [fn] * len(chunks), chunks, timeout=timeout))
        finally:
            with self._cond:
                self._holds -= 1
                self._cond.notify_all()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._cond:
            self._shutdown = True
            if cancel_futures:
                while self._queue:
                    self._queue.popleft()[0].cancel()
            self._cond.notify_all()
        if wait:
            self._thread.join()  # it also waits for the local workers to exit

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> Optional[bool]:
        if exc_type is KeyboardInterrupt:  # Ctrl-C: end the run now, do not wait for its calls
            self.shutdown(wait=False, cancel_futures=True)
            self._master.store.write_stop(dict(self._master._facts, why="KeyboardInterrupt"))
        return super().__exit__(exc_type, exc, tb)

    # -- the master thread's side ------------------------------------------
    def _check_open(self) -> None:
        if not self._shutdown:
            return
        if self._ended is None or isinstance(self._ended, _ShutDown):
            raise RuntimeError("cannot submit after shutdown")
        raise RuntimeError(f"cannot submit: fsmw.Executor on {self._master.store.root} has ended: "
                           f"{self._ended}") from self._ended

    def _next_batch(self) -> List[Queued]:
        """The calls of the next round: those queued once submitting pauses, a map has queued
        all of its calls, or MAX_LINGER_SECS after the first (none at shutdown)."""
        with self._cond:
            self._cond.wait_for(lambda: self._queue or self._shutdown)
            deadline = time.monotonic() + self.MAX_LINGER_SECS
            while not self._shutdown and (self._holds or (time.monotonic() < deadline and self._grew())):
                if self._holds:
                    self._cond.wait(self._linger)
            batch = list(self._queue)
            self._queue.clear()
        return batch

    def _grew(self) -> bool:
        """Whether a call was queued within ``linger_secs`` (the condition's lock is held)."""
        size = len(self._queue)
        return self._cond.wait_for(lambda: len(self._queue) != size, self._linger)

    def _more_work(self) -> bool:
        """Wait for another call or shutdown; True if another round should start."""
        with self._cond:
            self._cond.wait_for(lambda: self._queue or self._shutdown)
            return bool(self._queue)

    def _run(self) -> None:
        failed = False
        try:
            summary = self._master.run()
            why: BaseException = RuntimeError(f"the run in {self._master.store.root} was stopped "
                                              f"(fsmw stop, or Ctrl-C) before this call ended")
            if not summary.stopped:
                why = _ShutDown("the executor was shut down")
        except BaseException as exc:  # the store failed, another master owns it...
            _log.error("fsmw.Executor on %s failed: %s", self._master.store.root, exc)
            why, failed = exc, True
        with self._cond:
            self._shutdown, self._ended = True, why
            queued = [f for f, _, _ in self._queue]
            self._queue.clear()
        for future in queued:
            if future.set_running_or_notify_cancel():  # False: it was cancelled
                future.set_exception(why)
        for future in self._master.futures.values():
            if not future.done():
                future.set_exception(why)
        self._master.futures.clear()
        if failed:  # no STOP was written: they would wait for work
            self._workers.terminate()
        self._workers.wait()  # they see STOP within about a second


def _chunks(items: Iterator[Tuple[Any, ...]], size: int) -> Iterator[list]:
    while True:
        chunk = list(itertools.islice(items, size))
        if not chunk:
            return
        yield chunk


def _flatten(results: Iterator[list]) -> Iterator[Any]:
    for chunk in results:
        yield from chunk


def _at_exit() -> None:
    """At interpreter exit, as concurrent.futures does: let queued calls run, then end the run
    (the interpreter waits for the master thread, which is not a daemon)."""
    for executor in list(_live):
        executor.shutdown(wait=False)


threading._register_atexit(_at_exit)  # type: ignore[attr-defined]  # before non-daemon threads are joined
