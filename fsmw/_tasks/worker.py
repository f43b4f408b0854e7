"""The generic worker (``fsmw worker``): runs the calls of :class:`fsmw.Executor` and the
commands of ``fsmw run``, from any store, with no user script.

It is a :class:`fsmw.Worker` whose ``process_file`` reads the task's input,
checks its seal under the run's key (``sealed``) and only then loads and
runs it (``calls``, ``commands``).  Everything else (claims, leases,
fencing, retries, backups, records, exit codes) is the Worker's.

Property: an input that is not sealed under the run's key fails its attempt
with an error that names the file and says nothing was run; nothing from it
is unpickled or executed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from .._worker.worker import Worker
from . import calls, commands
from .sealed import CALL, COMMAND, PayloadRejected, load_key, open_sealed


class TaskWorker(Worker):
    """Runs sealed calls and commands; see the module docstring."""

    _key: Optional[bytes] = None

    def key(self) -> bytes:
        """The run's key, read at the first task (the master makes it)."""
        if self._key is None:
            self._key = load_key(str(self.store.root))
        return self._key

    def process_file(self, input_path: Path, output_path: Path) -> None:
        where = str(input_path)
        with open(input_path, "rb") as f:
            data = f.read()
        key = self.key()
        kind, task, body = open_sealed(key, data, where)
        expected = Path(input_path).name[:-len(".in")] if where.endswith(".in") else task  # not on scratch
        if task != expected:
            raise PayloadRejected(f"{where} is sealed for task {task!r}, not {expected!r}; nothing was run")
        if kind == CALL:
            result = calls.run_call(key, task, body, where)
        elif kind == COMMAND:
            result = commands.run_command(key, task, commands.load_argv(body, where))
        else:
            raise PayloadRejected(f"{where} holds a {kind}, not a call or a command; nothing was run")
        with open(output_path, "wb") as f:
            f.write(result)
