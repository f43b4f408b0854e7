#!/usr/bin/env python3
"""Test worker: an fsmw.Worker whose behaviour is set by a JSON config file (argv[1]).

Config keys (only ``store`` is required):
  store, worker_id, options   passed to fsmw.Worker
  markers      directory: every process_file call creates ``<round>.<task>.exec.<n>``
               with O_EXCL (n = 1, 2, ... counted across all processes) holding JSON
               facts, and ``<same>.end`` when it returns or raises on purpose
  ready        a file created just before the worker runs
  barrier      a file to wait for before running (a start line for races)
  time_report  write this process's time.time() there (to check a faked clock)
  out_bytes    [lo, hi]: size range of the output payload (drawn per task and round)
  slow_write   write the output in 256 KiB chunks with a pause between them
Per-task behaviour, keyed by ``<round>/<task>``, ``<task>`` or ``*`` (first match);
lists are indexed by the execution number n (the last element repeats):
  sleep  {key: [secs, ...]}         sleep this long in process_file
  wait   {key: [path or null, ...]} wait until the path exists
  fail   {key: k}                   the first k executions raise RuntimeError
  gil    {key: [secs, ...]}         hold the GIL this long in one C call (libc sleep via ctypes.PyDLL)
  deaf   true                       ...with the stop signals and the nudge blocked meanwhile: a C
                                    call that never returns to Python (the keeper must SIGKILL)
  suicide {key: [true, ...]}        SIGKILL this worker process in process_file
Process-wide: ``keeper`` false runs the worker with the heartbeat thread alone;
``thread`` true runs Worker.run() in a thread that is not the main thread.
Outputs are blobs with fields ``task round value**2 pid worker_id``.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

import fsmw

import blob


def nth(values, n):
    return values[min(n, len(values)) - 1] if values else None


class TestWorker(fsmw.Worker):
    def __init__(self, config: dict) -> None:
        super().__init__(config["store"], config.get("worker_id"), **config.get("options", {}))
        self.config = config

    def behaviour(self, name: str, rnd: str, task: str):
        table = self.config.get(name, {})
        for key in (f"{rnd}/{task}", task, "*"):
            if key in table:
                return table[key]
        return None

    def process_file(self, input_path: Path, output_path: Path) -> None:
        data = Path(input_path).read_bytes()
        try:
            task, rnd, value = blob.parse(data, str(input_path))
        except ValueError as exc:
            raise ValueError(f"cannot parse input {input_path}: {exc}") from None
        n, marker = self.record_start(rnd, task, input_path, output_path)
        wait_path = nth(self.behaviour("wait", rnd, task), n)
        while wait_path is not None and not os.path.exists(wait_path):
            time.sleep(0.02)
        secs = nth(self.behaviour("sleep", rnd, task), n)
        if secs:
            time.sleep(secs)
        if nth(self.behaviour("suicide", rnd, task), n):
            os.kill(os.getpid(), signal.SIGKILL)
        secs = nth(self.behaviour("gil", rnd, task), n)
        if secs:
            self.hold_the_gil(secs)
        if n <= (self.behaviour("fail", rnd, task) or 0):
            if marker is not None:
                Path(f"{marker}.end").write_text(json.dumps(dict(mono=time.monotonic(), raised=True)))
            raise RuntimeError(f"boom: task {task} execution {n} fails on purpose")
        fields = [task, rnd, int(value) ** 2, os.getpid(), self.worker_id]
        self.write(output_path, blob.make(fields, blob.payload(f"out/{rnd}/{task}",
                                                               self.config.get("out_bytes"))))
        if marker is not None:
            Path(f"{marker}.end").write_text(json.dumps(dict(mono=time.monotonic())))

    def hold_the_gil(self, secs: float) -> None:
        """One C call that holds the GIL for ``secs`` (as many C extensions' calls do)."""
        libc = ctypes.PyDLL(None)  # PyDLL: the GIL stays held during the call
        blocked = {signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGUSR2}
        if self.config.get("deaf"):
            signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
        try:
            left = libc.sleep(int(secs))
            while left and not self.config.get("deaf"):  # a signal ended the sleep early:
                left = libc.sleep(left)  # back to Python between calls, as a C library would
        finally:
            if self.config.get("deaf"):
                signal.pthread_sigmask(signal.SIG_UNBLOCK, blocked)

    def record_start(self, rnd: str, task: str, input_path: Path, output_path: Path):
        markers = self.config.get("markers")
        if not markers:
            return 1, None
        facts = json.dumps(dict(pid=os.getpid(), worker_id=self.worker_id, mono=time.monotonic(),
                                input=str(input_path), output=str(output_path))).encode()
        n = 1
        while True:
            path = Path(markers, f"{rnd}.{task}.exec.{n}")
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                n += 1
                continue
            os.write(fd, facts)
            os.close(fd)
            return n, path

    def write(self, output_path: Path, data: bytes) -> None:
        chunk = 256 * 1024 if self.config.get("slow_write") else len(data) or 1
        with open(output_path, "wb") as f:
            for start in range(0, len(data), chunk):
                f.write(data[start:start + chunk])
                if self.config.get("slow_write"):
                    f.flush()
                    time.sleep(0.002)


def main(argv) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s")
    config = json.loads(Path(argv[1]).read_text())
    if config.get("time_report"):
        Path(config["time_report"]).write_text(repr(time.time()))
    TestWorker._KEEPER = config.get("keeper", True)
    worker = TestWorker(config)
    if config.get("ready"):
        Path(config["ready"]).touch()
    while config.get("barrier") and not os.path.exists(config["barrier"]):
        time.sleep(0.002)
    if not config.get("thread"):
        return int(worker.run())
    codes = []
    runner = threading.Thread(target=lambda: codes.append(int(worker.run())), name="worker")
    runner.start()
    runner.join()
    return codes[0]


if __name__ == "__main__":
    sys.exit(main(sys.argv))
