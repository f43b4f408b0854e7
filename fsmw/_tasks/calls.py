"""Python calls as tasks: what :class:`fsmw.Executor` stores, and how a worker runs it.

A call is ``(function, args, kwargs)`` pickled with the standard ``pickle``,
so the function travels by reference (module and name) and must be
importable on the workers; a call's input is sealed (``sealed``) before it is
written, and a worker checks the seal before it unpickles anything.  Its
result comes back as a sealed pickle in the task's output.  An exception
raised by the function fails the attempt like any ``process_file`` error
(retried up to ``max_attempts``); its error record carries the pickled
exception, sealed, next to the traceback, so the last one can be raised
again on the submitting side with the remote traceback, host and attempt.

Property: the submitting side unpickles only what a worker holding the key
sealed, and a worker only what the submitting side sealed.
"""

from __future__ import annotations

import base64
import pickle
import pickletools
import traceback
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from .._core.errors import FsmwError
from .._core.records import parse_record
from .._worker.stopping import TaskAbandoned, WorkerInterrupted
from .sealed import EXCEPTION, RESULT, Scope, open_as, seal


class NotImportable(FsmwError, TypeError):
    """A function cannot travel by reference to the workers."""


class TaskFailed(FsmwError):
    """A call or command used up its attempts without an exception that could come back."""


class RemoteTraceback(Exception):
    """The traceback of an exception raised on a worker (set as the exception's ``__cause__``)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return f'\n"""\n{self.text.rstrip()}\n"""'


class CallRaised(Exception):
    """What a worker raises when a call raised: the error record carries the exception."""

    def __init__(self, exc: BaseException, facts: Dict[str, str]) -> None:
        super().__init__(f"{type(exc).__name__}: {exc}")
        self.fsmw_record = facts
        tb = exc.__traceback__.tb_next if exc.__traceback__ else None  # from the user's function on
        self.fsmw_body = "".join(traceback.format_exception(type(exc), exc, tb))


def dump_call(fn: Callable[..., Any], args: Sequence[Any], kwargs: Dict[str, Any]) -> bytes:
    """The pickled call (sealed later, for the round it goes into).

    Raises:
        NotImportable: ``fn`` (or an argument) cannot be pickled, or ``fn`` (or a function
            among the arguments, e.g. in a ``functools.partial``) lives in ``__main__``, which
            the workers do not have.
    """
    name = getattr(fn, "__qualname__", fn)
    try:
        body = pickle.dumps((fn, tuple(args), dict(kwargs)), protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:  # PicklingError, AttributeError (a local function or a lambda)...
        raise NotImportable(f"cannot store a call of {name!r}: {exc} (functions travel by reference "
                            f"with pickle: use a function defined at the top level of an importable "
                            f"module, with picklable arguments)") from exc
    if _names_main(body):
        raise NotImportable(f"the call of {name!r} refers to something defined in __main__ (a script or "
                            f"a notebook): workers import functions by module and name, so put it in a "
                            f"module they can import (on their PYTHONPATH)")
    return body


def _names_main(body: bytes) -> bool:
    """Whether a pickle refers to a global of ``__main__`` (GLOBAL, or the module string that a
    STACK_GLOBAL a few opcodes later takes)."""
    ops = list(pickletools.genops(body))
    for i, (op, arg, _) in enumerate(ops):
        if op.name == "GLOBAL" and str(arg).startswith("__main__ "):
            return True
        if arg == "__main__" and any(o.name == "STACK_GLOBAL" for o, _, _ in ops[i + 1:i + 5]):
            return True
    return False


def run_call(key: bytes, scope: Scope, body: bytes, where: str) -> bytes:
    """Run a checked call's body; its sealed result.

    Raises:
        NotImportable: the function cannot be loaded here.
        CallRaised: the call raised (SystemExit too: it fails the call, not the worker), or its
            result does not pickle; the error record will carry the exception.
    """
    try:
        fn, args, kwargs = pickle.loads(body)
    except (ImportError, AttributeError) as exc:
        raise NotImportable(f"cannot load the call in {where} on this worker: {exc} (functions "
                            f"travel by reference: the function's module must be importable "
                            f"here, e.g. on the workers' PYTHONPATH)") from exc
    try:
        result = pickle.dumps(fn(*args, **kwargs), protocol=pickle.HIGHEST_PROTOCOL)
    except (WorkerInterrupted, TaskAbandoned):
        raise
    except BaseException as exc:
        raise CallRaised(exc, exception_facts(key, scope, exc)) from exc
    return seal(key, RESULT, scope, result)


def run_chunk(fn: Callable[..., Any], chunk: List[Tuple[Any, ...]]) -> List[Any]:
    """``map``'s task for ``chunksize`` > 1: the results of ``fn`` on each argument tuple."""
    return [fn(*args) for args in chunk]


def exception_facts(key: bytes, scope: Scope, exc: BaseException) -> Dict[str, str]:
    """Facts for the error record: the sealed pickled exception, if it pickles."""
    error = f"{type(exc).__name__}: {exc}".replace("\n", " ")
    try:
        body = pickle.dumps(exc, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:
        return {"error": error}
    sealed = seal(key, EXCEPTION, scope, body)
    return {"error": error, "exception": base64.b64encode(sealed).decode()}


def load_result(key: bytes, scope: Scope, data: bytes, where: str) -> Any:
    """The value of a call's sealed output.

    Raises:
        PayloadRejected: the seal does not hold for this round and task, or it is no result.
    """
    return pickle.loads(open_as(key, data, where, scope, RESULT))


def exception_from_failure(key: bytes, scope: Scope, record: bytes, where: str) -> BaseException:
    """The exception to raise for a failed call, from its ``.failed`` record.

    The call's own exception when the record carries it sealed (with the remote
    traceback as ``__cause__`` and a note naming host, worker and attempt), else
    TaskFailed with the recorded error.
    """
    task = scope[1]
    facts = parse_record(record)
    where_run = (f"raised on host {facts.get('host', '?')} (worker {facts.get('worker_id', '?')}, "
                 f"pid {facts.get('pid', '?')}), attempt {facts.get('attempt', '?')} of "
                 f"{facts.get('attempts', '?')}, task {task}")
    exc: Optional[BaseException] = None
    if facts.get("exception"):
        try:
            exc = pickle.loads(open_as(key, base64.b64decode(facts["exception"]), where, scope, EXCEPTION))
        except Exception:  # a record that does not open, or a class not importable here
            exc = None
    if not isinstance(exc, BaseException):
        exc = TaskFailed(f"task {task} failed after {facts.get('attempts', '?')} attempts: "
                         f"{facts.get('error') or 'unknown error'} ({where})")
    exc.__cause__ = RemoteTraceback(f"{where_run}\n{facts.get('', '')}")
    note = getattr(exc, "add_note", None)
    if note is not None:
        note(f"fsmw: {where_run}")
    return exc
