"""Functions the Executor tests submit: importable by the workers (tests/ is on their path)."""

from __future__ import annotations

import os
import socket
import time


class Odd(Exception):
    """A user exception that must come back as itself, not as a generic error."""

    def __init__(self, value: int) -> None:
        super().__init__(f"{value} is odd")
        self.value = value


def square(x: int) -> int:
    return x * x


def add(x: int, y: int = 0) -> int:
    return x + y


def even_only(x: int) -> int:
    if x % 2:
        raise Odd(x)
    return x


def where(x: int) -> tuple:
    """(x, pid, host): which worker ran the call."""
    return x, os.getpid(), socket.gethostname()


def fail_first(marker_dir: str, x: int) -> int:
    """Raise on the first attempt at ``x`` (an O_EXCL marker), succeed after."""
    try:
        os.close(os.open(os.path.join(marker_dir, f"tried-{x}"), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return x
    raise RuntimeError(f"first attempt at {x}")


def nap(secs: float) -> float:
    time.sleep(secs)
    return secs


def numbers(n: int):
    """A generator: a result that does not pickle."""
    return (i for i in range(n))
