"""Authenticated payloads: what lets a worker run a stored call or command safely.

A stored call (a pickle) or command (an argv) is code.  Every payload that
fsmw's generic tasks write into a store is sealed with an HMAC-SHA256 under
the run's key, bound to its kind and to its task's name::

    fsmw-call 1
    task: c000000007
    hmac: 5f0c...(64 hex digits)

    <body: the pickle, or the JSON argv>

The key is ``$FSMW_KEY`` when that is set, else the store's ``KEY`` file:
32 random bytes (hex) that the first master creates with mode 0600.  A reader
takes the file only if it is a regular file (not a link) owned by its own
user and readable by nobody else.

Property: without the key, nothing written into the store is ever
unpickled or run: :func:`open_sealed` checks the seal before it returns a
body, with :func:`hmac.compare_digest`; a payload moved to another task's
name, or a result passed off as a call, fails the check (kind and task are
under the seal).  Whoever can write the store but cannot read the key (or
replace it with one the workers accept: that takes their user id) can make
attempts fail, never make them run something else.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
from typing import Optional, Tuple

from .._core.errors import FsmwError

KEY_NAME = "KEY"
KEY_ENV = "FSMW_KEY"
CALL, RESULT, COMMAND, OUTPUT, EXCEPTION = "call", "result", "command", "output", "exception"
KINDS = (CALL, RESULT, COMMAND, OUTPUT, EXCEPTION)
_VERSION = "1"


class PayloadRejected(FsmwError):
    """A payload is not sealed under the run's key (tampered with, or not fsmw's): it is not run."""


class KeyProblem(FsmwError):
    """The run's key cannot be read or is not safe to trust."""


def _digest(key: bytes, kind: str, task: str, body: bytes) -> str:
    mac = hmac.new(key, f"fsmw-{kind}\0{task}\0".encode(), hashlib.sha256)
    mac.update(body)
    return mac.hexdigest()


def seal(key: bytes, kind: str, task: str, body: bytes, facts: Tuple[Tuple[str, str], ...] = ()) -> bytes:
    """A sealed payload: a readable header (``facts`` are shown, not sealed), then ``body``."""
    extra = "".join(f"{k}: {v}\n" for k, v in facts)
    head = f"fsmw-{kind} {_VERSION}\ntask: {task}\n{extra}hmac: {_digest(key, kind, task, body)}\n\n"
    return head.encode() + body


def open_sealed(key: bytes, data: bytes, where: str) -> Tuple[str, str, bytes]:
    """(kind, task, body) of a sealed payload, once its seal is checked.

    Raises:
        PayloadRejected: naming ``where`` and what is wrong.
    """
    head, sep, body = data.partition(b"\n\n")
    lines = head.decode("utf-8", errors="replace").split("\n")
    first = lines[0].split(" ")
    if not sep or len(first) != 2 or not first[0].startswith("fsmw-") or first[0][5:] not in KINDS:
        raise PayloadRejected(f"{where} is not an fsmw payload (no 'fsmw-<kind> 1' header)")
    if first[1] != _VERSION:
        raise PayloadRejected(f"{where}: payload version {first[1]!r} is not {_VERSION!r}")
    facts = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    kind, task, claimed = first[0][5:], facts.get("task", ""), facts.get("hmac", "")
    if not hmac.compare_digest(claimed.encode(), _digest(key, kind, task, body).encode()):
        raise PayloadRejected(f"{where}: the payload's HMAC does not match the run's key "
                              f"(tampered with, or sealed under another key); nothing was run")
    return kind, task, body


def header(data: bytes) -> dict:
    """The readable header facts of a payload (not checked: for display and sizes only)."""
    head = data.partition(b"\n\n")[0].decode("utf-8", errors="replace").split("\n")
    return dict(line.split(": ", 1) for line in head[1:] if ": " in line)


def load_key(store: str, create: bool = False) -> bytes:
    """The run's key: ``$FSMW_KEY``, else the store's KEY file (made if ``create``).

    Raises:
        KeyProblem: naming the file and why it is not trusted.
    """
    env = os.environ.get(KEY_ENV)
    if env:
        return env.encode()
    path = os.path.join(store, KEY_NAME)
    if create:
        _create_key(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        raise KeyProblem(f"{path} does not exist: the run's key is made by its master "
                        f"(fsmw.Executor, fsmw run), or set ${KEY_ENV}") from None
    except OSError as exc:
        raise KeyProblem(f"cannot open the run's key {path}: {exc.strerror or exc}") from None
    try:
        problem = _untrusted(os.fstat(fd))
        if problem:
            raise KeyProblem(f"{path} is not trusted as the run's key: {problem}")
        key = os.read(fd, 4096).strip()
    finally:
        os.close(fd)
    if len(key) < 32:
        raise KeyProblem(f"{path} is too short to be the run's key ({len(key)} bytes)")
    return key


def _untrusted(st: os.stat_result) -> Optional[str]:
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file"
    if st.st_uid != os.geteuid():
        return f"owned by uid {st.st_uid}, not by this user ({os.geteuid()})"
    if st.st_mode & 0o077:
        return f"mode {stat.S_IMODE(st.st_mode):04o} lets others read or write it (want 0600)"
    return None


def _create_key(path: str) -> None:
    """Write a new key with O_EXCL and mode 0600 (narrower than any umask); keep an existing one."""
    tmp = f"{path}.tmp.{secrets.token_hex(8)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, secrets.token_hex(32).encode() + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # never replaces a key another master made first
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)
