"""Shell-free commands as tasks: what ``fsmw run`` stores, and how a worker runs it.

A command task's input is a sealed JSON argv (``sealed``), already
substituted by ``fsmw run``: the worker runs exactly the argv that was
sealed, with no shell, stdin from ``/dev/null``, in its own working
directory and environment.  Its output is sealed too::

    fsmw-output 1
    round: 1
    task: line-000003
    exit: 0
    stdout: 12
    stderr: 0
    hmac: ...

    12
    <stdout bytes><stderr bytes>

A non-zero exit fails the attempt (retried as usual); the error record names
the exit code and ends with the tail of stderr.  An interrupted attempt
(SIGTERM, ``STOP``, a lost claim) kills the command's process group first.

Property: a worker runs an argv only if it was sealed under the run's key for
that task, and an output counts only if a worker sealed it for that task.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from typing import List, NamedTuple

from .._core.errors import FsmwError
from .sealed import COMMAND, KEY_ENV, OUTPUT, PayloadRejected, Scope, open_as, seal

PLACEHOLDER = "{}"
TAIL = 2000  # bytes of stderr an error record keeps


class CommandFailed(Exception):
    """The command exited non-zero (or by a signal): the attempt fails."""


class BadCommand(FsmwError, ValueError):
    """A command line or task line ``fsmw run`` cannot use."""


class CommandOutput(NamedTuple):
    """A command that exited 0: what it wrote (a non-zero exit is a failed attempt, no output)."""

    stdout: bytes
    stderr: bytes


def substitute(argv: List[str], line: str) -> List[str]:
    """``argv`` with every ``{}`` replaced by ``line``; without any, ``line`` is appended (as
    GNU parallel does)."""
    if not argv:
        raise BadCommand("no command given after --")
    if any(PLACEHOLDER in arg for arg in argv):
        return [arg.replace(PLACEHOLDER, line) for arg in argv]
    return argv + [line]


def dump_command(key: bytes, scope: Scope, argv: List[str]) -> bytes:
    return seal(key, COMMAND, scope, json.dumps(argv).encode())


def load_argv(body: bytes, where: str) -> List[str]:
    argv = json.loads(body.decode())
    if not (isinstance(argv, list) and argv and all(isinstance(a, str) for a in argv)):
        raise PayloadRejected(f"{where}: a command must be a non-empty list of strings")
    return argv


def run_command(key: bytes, scope: Scope, argv: List[str]) -> bytes:
    """Run ``argv``; its sealed output.

    Raises:
        CommandFailed: it exited non-zero, was killed, or could not be started.
    """
    try:
        env = {k: v for k, v in os.environ.items() if k != KEY_ENV}  # the key is not the command's
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True, env=env)
    except OSError as exc:
        raise CommandFailed(f"cannot run {argv[0]!r}: {exc.strerror or exc}") from None
    try:
        out, err = proc.communicate()
    finally:  # interrupted (WorkerInterrupted, TaskAbandoned): the command must not outlive us
        if proc.poll() is None:
            _kill_group(proc)
    if proc.returncode != 0:
        how = (f"was killed by signal {-proc.returncode}" if proc.returncode < 0
               else f"exited with code {proc.returncode}")
        tail = err[-TAIL:].decode("utf-8", errors="replace").rstrip()
        raise CommandFailed(f"{argv[0]} {how}" + (f"; stderr ends:\n{tail}" if tail else ""))
    facts = (("exit", "0"), ("stdout", str(len(out))), ("stderr", str(len(err))))
    return seal(key, OUTPUT, scope, b"%d\n" % len(out) + out + err, facts)  # the split is sealed too


def load_output(key: bytes, scope: Scope, data: bytes, where: str) -> CommandOutput:
    """A command's checked output.

    Raises:
        PayloadRejected: the seal does not hold for this round and task, or it is no output.
    """
    size, _, both = open_as(key, data, where, scope, OUTPUT).partition(b"\n")
    if not size.isdigit():
        raise PayloadRejected(f"{where}: the output does not start with its stdout's size")
    return CommandOutput(both[:int(size)], both[int(size):])


def _kill_group(proc: "subprocess.Popen[bytes]") -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        proc.kill()
    proc.wait()
