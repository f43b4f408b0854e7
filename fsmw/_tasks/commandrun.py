"""``fsmw run``'s master: one command task per non-empty line, stdout printed in input order.

Task names are ``line-NNNNNN`` after the line's number in the tasks file
(blank lines are skipped but keep the numbering), so a rerun with the same
file and command after a crash yields the same tasks, sealed to the same
bytes under the store's key, and resumes the open round (``resume``).

Property: each task's stdout is written to ``out`` exactly once, in the
order of the lines, as soon as every earlier task has ended; a failed task
is named on ``err`` with its line and last error, in the same order.  An
output that waits for earlier tasks is held as its path, not its bytes.
"""

from __future__ import annotations

from typing import IO, Any, Dict, Iterator, List, Optional, Tuple, Union

from .._core.errors import FsmwError
from .._core.records import error_line
from .commands import BadCommand, dump_command, load_output, substitute
from .sealed import PayloadRejected, read_regular
from .taskmaster import TaskMaster

PREFIX = "line-"


class OutputClosed(FsmwError):
    """``fsmw run``'s stdout went away (not an OSError: the master must not retry it)."""


def read_tasks(path: str) -> List[Tuple[int, str]]:
    """(line number, line) of each line of ``path`` that is not blank (without its line end).

    Raises:
        BadCommand: the file cannot be read, is not UTF-8, or holds no task.
    """
    try:
        with open(path, "rb") as f:  # lines end at \n only (a lone \r is part of its line)
            text = f.read().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadCommand(f"cannot read the tasks file {path}: {exc}") from None
    lines = [(n, line[:-1] if line.endswith("\r") else line) for n, line in enumerate(text.split("\n"), 1)]
    tasks = [(n, line) for n, line in lines if line.strip()]
    bad = next((n for n, line in tasks if "\0" in line), None)
    if bad is not None:
        raise BadCommand(f"{path} line {bad} holds a NUL byte, which no argument can carry")
    if not tasks:
        raise BadCommand(f"{path} holds no task (no non-empty line)")
    return tasks


class CommandMaster(TaskMaster):
    """Writes one sealed command per task line; prints outputs in order as they come."""

    def __init__(self, store: Any, tasks: List[Tuple[int, str]], argv: List[str], out: IO[bytes],
                 err: IO[str], **kwargs: Any) -> None:
        super().__init__(store, None, **kwargs)
        self._lines, self._argv, self._out, self._err = tasks, argv, out, err
        width = max(6, len(str(tasks[-1][0])))
        self._names = [f"{PREFIX}{n:0{width}d}" for n, _ in tasks]
        self._position = {name: i for i, name in enumerate(self._names)}
        self._ended: Dict[int, Tuple[Union[bytes, str, None], str]] = {}  # bytes, a path, or failed
        self._next = 0
        self.failed: List[str] = []
        self.done = 0

    def create_input_files(self) -> None:
        key = self.key()
        for i, (_, line) in enumerate(self._lines):
            name = self._names[i]
            self.expects(name)
            self.create_input_file(name, dump_command(key, self.scope(name), substitute(self._argv, line)))

    def process_output_files(self, outputs: Any) -> bool:
        for task, why in self.settle_round().items():
            self._ended[self._position[task]] = (None, why)
        self._print_ready()
        return False

    def task_done(self, task: str, output: bytes, where: str) -> None:
        i = self._position[task]
        stdout, why = self._stdout(task, output, where)
        # An output that must wait for earlier tasks is kept as its path, not its bytes (read
        # and checked again when its turn comes), so memory does not grow with the outputs.
        self._ended[i] = (stdout if i == self._next or stdout is None else where, why)
        self._print_ready()

    def _stdout(self, task: str, output: bytes, where: str) -> Tuple[Optional[bytes], str]:
        """(stdout, "") of a checked output, or (None, why it is not trusted)."""
        try:
            return load_output(self.key(), self.scope(task), output, where).stdout, ""
        except Exception as exc:  # a rejected seal: the output is not trusted, the task not done
            return None, str(exc)

    def _printable(self, i: int, kept: Union[bytes, str, None], why: str) -> Tuple[Optional[bytes], str]:
        if not isinstance(kept, str):
            return kept, why
        try:
            return self._stdout(self._names[i], read_regular(kept), kept)
        except (OSError, PayloadRejected) as exc:
            return None, f"cannot read {kept} again: {exc}"

    def task_failed(self, task: str, record: bytes, where: str) -> None:
        self._ended[self._position[task]] = (None, error_line(record))
        self._print_ready()

    def _print_ready(self) -> None:
        try:
            for i, (kept, why_kept) in self._ready():
                stdout, why = self._printable(i, kept, why_kept)
                if stdout is not None:
                    self._out.write(stdout)
                    self.done += 1
                else:
                    (number, line), name = self._lines[i], self._names[i]
                    self.failed.append(name)
                    self._err.write(f"fsmw run: task {name} (line {number}: {line}) failed: {why}\n")
            self._out.flush()
            self._err.flush()
        except BrokenPipeError:  # e.g. | head: not the store's fault, and nothing left to print to
            raise OutputClosed("stdout was closed (a pipe's reader exited); the round stays open: "
                               "rerun the same command to resume") from None

    def _ready(self) -> Iterator[Tuple[int, Tuple[Union[bytes, str, None], str]]]:
        while self._next in self._ended:
            i = self._next
            self._next += 1
            yield i, self._ended.pop(i)
