"""``fsmw worker`` and ``fsmw run``: generic tasks with no user script.

``fsmw worker STORE [--flag=value ...]`` takes the Worker's flags (those of
``examples/worker.py``, from ``fsmw.flags``) and exits with the Worker's
codes.  ``fsmw run STORE --tasks FILE [--local-workers N] [--flag=value ...]
-- CMD [ARGS...]`` takes the master's flags; it exits 0 when every task
succeeded, 1 when any failed (each named on stderr) or the run was stopped,
2 on a usage error.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from typing import List

from .._core.errors import FsmwError
from .._tasks.local import PARENT_FLAG

WORKER_USAGE = "usage: fsmw worker STORE [--flag=value ...]   (the flags of examples/worker.py --help)"
RUN_USAGE = ("usage: fsmw run STORE --tasks FILE [--local-workers N] [--flag=value ...] -- CMD [ARGS...]\n"
             "  {} in CMD or ARGS is replaced by the task's line (appended when there is no {});\n"
             "  flags: those of examples/master.py --help")


def _usage(text: str, problem: str = "") -> int:
    print((f"fsmw: {problem}\n" if problem else "") + text, file=sys.stderr)
    return 2


def worker_command(argv: List[str]) -> int:
    from .. import flags
    if argv[:1] in (["-h"], ["--help"]):
        print(WORKER_USAGE.split("   ")[0] + "\nflags (see docs/generic-tasks.md): "
              + ", ".join(f"--{name}" for name in ("worker_id", "log_level") + flags.WORKER_FLAGS))
        return 0
    if not argv or argv[0].startswith("-"):
        return _usage(WORKER_USAGE, "STORE is missing")
    from .._tasks.worker import TaskWorker

    rest = argv[1:]
    parent = _take(rest, PARENT_FLAG)
    flags.parse_again(["fsmw worker"] + rest)
    logging.getLogger().setLevel(flags.FLAGS.log_level)
    worker = TaskWorker(argv[0], flags.worker_id(), **flags.worker_options())  # type: ignore[arg-type]
    if parent is not None and parent.isdigit():
        _stop_when_gone(int(parent))
    return int(worker.run())


def _stop_when_gone(parent: int) -> None:
    """A local worker (``_tasks.local``) stops, as on SIGTERM, once the process that started
    it is gone (we are then a child of another process): no run outlives its master."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)  # as a scheduler would: the running task is given back
    threading.Thread(target=watch, name="fsmw-parent-watch", daemon=True).start()


def run_command(argv: List[str]) -> int:
    if "--" not in argv:
        return _usage(RUN_USAGE, "the command is missing: put it after --")
    cut = argv.index("--")
    own, command = argv[:cut], argv[cut + 1:]
    if not own or own[0].startswith("-") or not command:
        return _usage(RUN_USAGE, "STORE is missing" if command else "no command after --")
    store, rest = own[0], own[1:]
    tasks_file, local = _take(rest, "--tasks"), _take(rest, "--local-workers") or "0"
    if tasks_file is None:
        return _usage(RUN_USAGE, "--tasks FILE is missing")
    if not local.isdigit():
        return _usage(RUN_USAGE, f"--local-workers must be a number, not {local!r}")
    from .. import flags
    from .._tasks.commandrun import CommandMaster, OutputClosed, read_tasks
    from .._tasks.local import LocalWorkers

    flags.parse_again(["fsmw run"] + rest)
    logging.getLogger().setLevel(flags.FLAGS.log_level if flags.given("log_level") else "WARNING")
    tasks = read_tasks(tasks_file)
    master = CommandMaster(store, tasks, command, sys.stdout.buffer, sys.stderr, **flags.master_options())
    workers = LocalWorkers(store, int(local), master.options)
    master.key()  # the store and its key, before any worker looks
    workers.start()
    try:
        summary = master.run()
    except OutputClosed as exc:
        print(f"fsmw run: {exc}", file=sys.stderr)
        return 1
    finally:
        if workers.procs and not master.store.stopped():
            workers.terminate()
        workers.wait()
    failed, not_run = len(master.failed), len(tasks) - master.done - len(master.failed)
    print(f"fsmw run: {len(tasks)} tasks: {master.done} done, {failed} failed"
          + (f", {not_run} not run" if not_run else "") + f" ({summary.wall_secs:.1f} s)"
          + ("; stopped from outside" if summary.stopped else ""), file=sys.stderr)
    return 1 if failed or not_run or summary.stopped else 0


def _take(args: List[str], name: str) -> "str | None":
    """The value of ``name VALUE`` or ``name=VALUE`` in ``args`` (both are removed)."""
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            value = args[i + 1]
            del args[i:i + 2]
            return value
        if arg.startswith(name + "="):
            del args[i]
            return arg.split("=", 1)[1]
    return None


def run_or_usage(command: str, argv: List[str]) -> int:
    try:
        return worker_command(argv) if command == "worker" else run_command(argv)
    except FsmwError as exc:
        print(f"fsmw {command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"fsmw {command}: interrupted" + ("; the round stays open: rerun the same command "
                                               "to resume" if command == "run" else ""), file=sys.stderr)
        return 130
