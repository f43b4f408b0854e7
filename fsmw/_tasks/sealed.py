"""Authenticated payloads: what lets a worker run a stored call or command safely.

A stored call (a pickle) or command (an argv) is code.  Every payload that
fsmw's generic tasks write into a store is sealed with an HMAC-SHA256 under
the run's key, bound to its kind, its round and its task's name::

    fsmw-call 1
    round: 1
    task: c000000007
    hmac: 5f0c...(64 hex digits)

    <body: the pickle, or the JSON argv>

The key is ``$FSMW_KEY`` when that is set (at least 32 characters), else
the store's ``KEY`` file: 32 random bytes (hex) that the first master
creates with mode 0600.  A reader takes the file only if it is a regular
file (not a symbolic link, one link only) owned by its own user and readable
by nobody else.  Payloads are authenticated, not encrypted.

Property: without the key, nothing written into the store is ever
unpickled or run: :func:`open_sealed` checks the seal for the round and
task the reader expects before it returns a body, with
:func:`hmac.compare_digest`; a payload moved to another task, replayed from
an earlier round, or a result passed off as a call, fails the check (kind,
round and task are under the seal; rounds are never reused in a store).
Whoever can write the store but cannot read the key (or replace it with one
the workers accept: that takes their user id) can make attempts fail, never
make them run something else.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
from typing import List, Optional, Tuple

from .._core.errors import FsmwError

KEY_NAME = "KEY"
KEY_ENV = "FSMW_KEY"
MIN_KEY = 32
CALL, RESULT, COMMAND, OUTPUT, EXCEPTION = "call", "result", "command", "output", "exception"
KINDS = (CALL, RESULT, COMMAND, OUTPUT, EXCEPTION)
_VERSION = "1"


class PayloadRejected(FsmwError):
    """A payload is not sealed under the run's key (tampered with, or not fsmw's): it is not run."""


class KeyProblem(FsmwError):
    """The run's key cannot be read or is not safe to trust."""


Scope = Tuple[int, str]  # (round number, task name): what a payload is sealed for


def _digest(key: bytes, kind: str, scope: Scope, body: bytes) -> str:
    round_number, task = scope
    mac = hmac.new(key, f"fsmw-{kind}\0{round_number}\0{len(task)}:{task}\0".encode(), hashlib.sha256)
    mac.update(body)
    return mac.hexdigest()


def seal(key: bytes, kind: str, scope: Scope, body: bytes, facts: Tuple[Tuple[str, str], ...] = ()) -> bytes:
    """A payload sealed for ``scope``: a readable header (``facts`` are shown, not sealed), then ``body``."""
    extra = "".join(f"{k}: {v}\n" for k, v in facts)
    head = (f"fsmw-{kind} {_VERSION}\nround: {scope[0]}\ntask: {scope[1]}\n{extra}"
            f"hmac: {_digest(key, kind, scope, body)}\n\n")
    return head.encode() + body


def open_sealed(key: bytes, data: bytes, where: str, scope: Scope) -> Tuple[str, bytes]:
    """(kind, body) of a payload, once its seal is checked for ``scope`` (round and task).

    Raises:
        PayloadRejected: naming ``where`` and what is wrong: not a payload, or not sealed under
            this key for this round and task (tampered with, moved, or replayed from elsewhere).
    """
    head, sep, body = data.partition(b"\n\n")
    lines = head.decode("utf-8", errors="replace").split("\n")
    first = lines[0].split(" ")
    if not sep or len(first) != 2 or not first[0].startswith("fsmw-") or first[0][5:] not in KINDS:
        raise PayloadRejected(f"{where} is not an fsmw payload (no 'fsmw-<kind> 1' header); nothing was run")
    if first[1] != _VERSION:
        raise PayloadRejected(f"{where}: payload version {first[1]!r} is not {_VERSION!r}")
    facts = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    kind, claimed = first[0][5:], facts.get("hmac", "")
    if not hmac.compare_digest(claimed.encode(), _digest(key, kind, scope, body).encode()):
        raise PayloadRejected(f"{where}: the payload's HMAC does not match the run's key for round "
                              f"{scope[0]} task {scope[1]} (tampered with, moved or replayed, or sealed "
                              f"under another key); nothing was run")
    return kind, body


def open_as(key: bytes, data: bytes, where: str, scope: Scope, kind: str) -> bytes:
    """The body of a payload that must be a ``kind`` sealed for ``scope``.

    Raises:
        PayloadRejected: the seal does not hold, or the payload is of another kind.
    """
    found, body = open_sealed(key, data, where, scope)
    if found != kind:
        raise PayloadRejected(f"{where} holds a {found}, not the {kind} of task {scope[1]}")
    return body


def load_key(store: str, create: bool = False) -> bytes:
    """The run's key: ``$FSMW_KEY``, else the store's KEY file (made if ``create``).

    Raises:
        KeyProblem: naming the file and why it is not trusted.
    """
    env = os.environ.get(KEY_ENV)
    if env:
        if len(env) < MIN_KEY:
            raise KeyProblem(f"${KEY_ENV} is too short to be a key ({len(env)} characters; want at "
                             f"least {MIN_KEY}, e.g. the output of: python3 -c 'import secrets; "
                             f"print(secrets.token_hex(32))')")
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
    if len(key) < MIN_KEY:
        raise KeyProblem(f"{path} is too short to be the run's key ({len(key)} bytes)")
    return key


def _untrusted(st: os.stat_result) -> Optional[str]:
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file"
    if st.st_uid != os.geteuid():
        return f"owned by uid {st.st_uid}, not by this user ({os.geteuid()})"
    if st.st_mode & 0o077:
        return f"mode {stat.S_IMODE(st.st_mode):04o} lets others read or write it (want 0600)"
    if st.st_nlink != 1:
        return f"it has {st.st_nlink} links (another store's key, linked in?)"
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


def read_regular(path: str, limit: int = 1 << 30) -> bytes:
    """The bytes of a regular file; never blocks on a FIFO or follows a final symbolic link.

    Raises:
        OSError: it cannot be read; PayloadRejected: it is not a regular file, or too big.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise PayloadRejected(f"{path} is not a regular file; nothing was read")
        if st.st_size > limit:
            raise PayloadRejected(f"{path} is {st.st_size} bytes, more than {limit}")
        chunks: List[bytes] = []
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
    finally:
        os.close(fd)
