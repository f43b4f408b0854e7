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

from .._core.claims import Claim
from .._core.errors import FsmwError
from .._core.shard import Shard
from .._worker.codes import StepResult
from .._worker.worker import Worker
from . import calls, commands
from .sealed import CALL, COMMAND, PayloadRejected, Scope, load_key, open_sealed, read_regular


class TaskWorker(Worker):
    """Runs sealed calls and commands; see the module docstring."""

    _key: Optional[bytes] = None
    _scope: Optional[Scope] = None

    def key(self) -> bytes:
        """The run's key, read at the first task (the master makes it)."""
        if self._key is None:
            self._key = load_key(str(self.store.root))
        return self._key

    def _work(self, shard: Shard, claim: Claim) -> StepResult:
        # The round and task a payload must be sealed for are the claim's, not what the file
        # says (and not its path: with use_tmp it is a scratch copy).
        self._scope = (self._work_in.round.number, claim.task)
        try:
            return super()._work(shard, claim)
        finally:
            self._scope = None

    def process_file(self, input_path: Path, output_path: Path) -> None:
        where, scope = str(input_path), self._scope
        if scope is None:
            raise FsmwError("TaskWorker.process_file runs only inside a claimed attempt")
        data = read_regular(where)
        key = self.key()
        kind, body = open_sealed(key, data, where, scope)
        if kind == CALL:
            result = calls.run_call(key, scope, body, where)
        elif kind == COMMAND:
            result = commands.run_command(key, scope, commands.load_argv(body, where))
        else:
            raise PayloadRejected(f"{where} holds a {kind}, not a call or a command; nothing was run")
        with open(output_path, "wb") as f:
            f.write(result)
