"""Helpers of the multi-process tests: launch, watch and always reap child processes.

:class:`Procs` starts every child (the test apps in ``support/apps``), sends each
one's stdout and stderr to its own log file, and on exit kills and reaps every
child still alive, stopped ones included.  :func:`wait_for` waits for a
condition with a deadline; tests never sleep a fixed time for correctness.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, TypeVar, Union

PROGS = Path(__file__).resolve().parent / "apps"  # the test apps, run by path
T = TypeVar("T")


def fast_options(**changes: object) -> Dict[str, object]:
    """fsmw options that make a test farm react in fractions of a second."""
    options: Dict[str, object] = dict(
        lease_secs=2.0, max_attempts=3, lockfile_timeout_threshold=0.0,
        master_idle_sleep_secs=0.1, worker_idle_sleep_secs=0.1, worker_max_idle_secs=60.0,
        fsync=False)
    options.update(changes)
    return options


def wait_for(condition: Callable[[], T], timeout: float, what: str, interval: float = 0.02) -> T:
    """Poll ``condition`` until it returns something true; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.1f} s waiting for {what}")
        time.sleep(interval)


class Proc:
    """One child process and its log files."""

    def __init__(self, name: str, popen: subprocess.Popen, log: Path, result: Optional[Path]) -> None:
        self.name = name
        self.popen = popen
        self.log = log
        self.result_path = result

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive():
            os.kill(self.pid, sig)

    def crash(self) -> None:
        """SIGKILL the child's whole process group at once, as if its node died.

        A worker's keeper process (``fsmw._worker.keeper``) is in the group, so it
        dies too: only the lease can tell that the worker is gone.
        """
        if self.alive():
            os.killpg(self.pid, signal.SIGKILL)  # children run in their own session

    def wait(self, timeout: float) -> int:
        """The exit code (negative: killed by that signal); fail after ``timeout`` s."""
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.name} (pid {self.pid}) still running after {timeout:.1f} s"
                                 f"\n{self.tail()}") from None

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def tail(self, lines: int = 25) -> str:
        return "\n".join(f"  {self.name}| {line}" for line in self.text().splitlines()[-lines:])

    def wait_log(self, text: str, timeout: float) -> None:
        wait_for(lambda: text in self.text(), timeout, f"{text!r} in the log of {self.name}")

    def result(self, timeout: float) -> dict:
        """Wait for a master to exit 0 and return the result it wrote."""
        code = self.wait(timeout)
        assert code == 0, f"{self.name} exited with {code}\n{self.tail()}"
        return json.loads(self.result_path.read_text())


class Procs:
    """Starts the test's children; on exit kills and reaps every one still alive."""

    def __init__(self, workdir: Path) -> None:
        self.dir = Path(workdir, "procs")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.all: List[Proc] = []

    def __enter__(self) -> "Procs":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def start(self, name: str, argv: List[str], env: Optional[Dict[str, str]] = None,
              result: Optional[Path] = None) -> Proc:
        log = self.dir / f"{name}.log"
        child_env = {k: v for k, v in os.environ.items() if not k.startswith(("FAKETIME", "LD_PRELOAD"))}
        child_env.update(env or {})
        with open(log, "wb") as out:
            popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                     env=child_env, cwd=self.dir, start_new_session=True)
        proc = Proc(name, popen, log, result)
        self.all.append(proc)
        return proc

    def program(self, name: str, prog: str, config: dict, env: Optional[Dict[str, str]] = None,
                result: Optional[Path] = None) -> Proc:
        path = self.dir / f"{name}.json"
        path.write_text(json.dumps(config, default=str, indent=1))
        return self.start(name, [sys.executable, str(PROGS / prog), str(path)], env, result)

    def master(self, store: Path, options: dict, name: str = "master", **config: object) -> Proc:
        result = self.dir / f"{name}.result.json"
        config = dict(config, store=str(store), options=options, result=str(result))
        return self.program(name, "master.py", config, result=result)

    def worker(self, store: Path, worker_id: int, options: dict, env: Optional[Dict[str, str]] = None,
               **behaviour: object) -> Proc:
        config = dict(behaviour, store=str(store), worker_id=worker_id, options=options)
        return self.program(f"worker{worker_id}", "worker.py", config, env)

    def by_pid(self, pid: int) -> Proc:
        return next(p for p in self.all if p.pid == pid)

    def report(self) -> str:
        return "\n".join(f"--- {p.name} (pid {p.pid}, exit {p.popen.poll()})\n{p.tail(60)}"
                         for p in self.all)

    def close(self) -> None:
        for proc in self.all:
            if proc.alive():
                for sig in (signal.SIGCONT, signal.SIGKILL):
                    try:
                        os.kill(proc.pid, sig)
                    except ProcessLookupError:
                        pass
        for proc in self.all:
            try:
                proc.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover - a SIGKILLed child is reaped at once
                pass


# -- the files of a round, over all its shards ---------------------------------
def shard_dirs(store: Union[str, Path], number: int = 1) -> List[Path]:
    """The shard directories of round ``number`` (``round-k/shard-NNNNNN``), in order."""
    return sorted(p for p in Path(store, f"round-{number:06d}").glob("shard-[0-9][0-9][0-9][0-9][0-9][0-9]")
                  if p.is_dir())


def anywhere(store: Union[str, Path], pattern: str = "*", number: int = 1) -> List[str]:
    """The names matching ``pattern`` in round ``number``'s own directory and in each of its
    shards, as paths relative to the round directory (``SEALED``, ``shard-000000/t0000.out``).

    For checks that nothing of a kind (temps, records) was left anywhere in a round.
    """
    top = Path(store, f"round-{number:06d}")
    found = [p.name for p in top.glob(pattern)]
    for shard in shard_dirs(store, number):
        found += [f"{shard.name}/{p.name}" for p in shard.glob(pattern)]
    return sorted(found)


# -- what the test workers leave (markers of their process_file calls) --------
def executions(markers: Path, task: str, rnd: int = 1) -> List[dict]:
    """The process_file calls the test workers recorded for one task, in order."""
    found = []
    for path in Path(markers).glob(f"{rnd}.{task}.exec.*"):
        number = path.name.rpartition(".")[2]
        if number.isdigit():
            facts = json.loads(path.read_text() or "{}")
            facts.update(n=int(number), ended=Path(f"{path}.end").exists())
            found.append(facts)
    return sorted(found, key=lambda f: f["n"])


def execution(markers: Path, task: str, n: int, rnd: int = 1) -> Optional[dict]:
    """Execution ``n`` of a task once its facts are readable, else None."""
    path = Path(markers, f"{rnd}.{task}.exec.{n}")
    try:
        return json.loads(path.read_text()) or None
    except (FileNotFoundError, ValueError):
        return None


def faketime_env(offset: str, fake_utime: bool = False) -> Dict[str, str]:
    """Environment that runs a Python process with its wall clock moved by ``offset``.

    Uses the libfaketime build vendored by PyPI's ``libfaketime`` package: Debian's
    0.9.10 breaks time.sleep() on Python >= 3.11 (libfaketime#426).
    """
    import libfaketime

    lib = Path(libfaketime.__file__).parent / "vendor" / "libfaketime" / "src" / "libfaketime.so.1"
    env = dict(LD_PRELOAD=str(lib), FAKETIME=offset, FAKETIME_DONT_FAKE_MONOTONIC="1",
               FAKETIME_NO_CACHE="1")
    if fake_utime:
        env["FAKE_UTIME"] = "1"
    return env


def fsmw(*args, timeout=60):
    """Run the ``fsmw`` command (``python -m fsmw ARGS``): (exit code, stdout, stderr)."""
    done = subprocess.run([sys.executable, "-m", "fsmw", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout)
    return done.returncode, done.stdout, done.stderr


def status_json(store):
    """``fsmw status STORE --json``, parsed (it must succeed)."""
    code, out, err = fsmw("status", store, "--json")
    assert code == 0, err
    return json.loads(out)
