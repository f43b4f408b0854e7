"""Local ``fsmw worker`` processes that an Executor or ``fsmw run`` starts for you.

They run ``python -m fsmw worker STORE`` with this interpreter, the caller's
``sys.path`` on their ``PYTHONPATH`` (so the functions a caller can import,
they can too), the run's lease and attempt limit, a short idle pause and no
idle limit, each in a session of its own (a terminal's Ctrl-C reaches only
the caller, which ends the run with ``STOP``), and each stops as SIGTERM
would stop it once the process that started it is gone (killed, say, before
it could write ``STOP``).

Property: :meth:`LocalWorkers.wait` returns only once every process it
started has exited: they exit on ``STOP`` (code 0); one still running after
``grace_secs`` is terminated, then killed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any, List

IDLE_SLEEP_SECS = 0.5
PARENT_FLAG = "--exit_with_pid"  # fsmw worker's own flag (cli.tasks): stop once that process is gone
NEVER_IDLE_OUT = 10 ** 9  # seconds: they live as long as their run (a notebook may idle for hours)


class LocalWorkers:
    def __init__(self, store: str, count: int, options: Any, grace_secs: float = 30.0) -> None:
        self._store, self._count, self._options = store, count, options
        self._grace = grace_secs
        self.procs: List["subprocess.Popen[bytes]"] = []

    def argv(self, worker_id: int) -> List[str]:
        o = self._options
        return [sys.executable, "-m", "fsmw", "worker", self._store, f"--worker_id={worker_id}",
                f"--lease_secs={o.lease_secs}", f"--max_attempts={o.max_attempts}",
                f"--worker_idle_sleep_secs={min(IDLE_SLEEP_SECS, o.worker_idle_sleep_secs)}",
                f"--worker_max_idle_secs={NEVER_IDLE_OUT}", "--log_level=WARNING",
                f"{PARENT_FLAG}={os.getpid()}"]

    def start(self) -> None:
        env = dict(os.environ)
        path = [p or os.getcwd() for p in sys.path]
        env["PYTHONPATH"] = os.pathsep.join(path + [env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        for worker_id in range(1, self._count + 1):
            # their own session: a Ctrl-C meant for the caller does not kill them mid-run
            self.procs.append(subprocess.Popen(self.argv(worker_id), env=env, stdin=subprocess.DEVNULL,
                                               start_new_session=True))

    def terminate(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()

    def wait(self) -> List[int]:
        """Wait for every worker to exit (terminate, then kill, after the grace time); their codes."""
        for proc in self.procs:
            try:
                proc.wait(self._grace)
            except subprocess.TimeoutExpired:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        return [proc.returncode for proc in self.procs]
