#!/usr/bin/env python3
"""Test master: an fsmw.Master configured by a JSON file (argv[1]); writes a JSON result.

Config keys: store, options (passed to fsmw.Master); tasks (count, named t0000...);
rounds (how many rounds to run, same task names every round); in_bytes ([lo, hi]
input payload size); bad (task names whose input is not a blob); hold (a file to
wait for after collecting each round, before closing it); result (path).

Inputs are blobs with fields ``task round value`` (value = 1000 * round + i).  The
result records the Summary and, per round, each output's header and whether it
is exactly what that round's input asked for.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

import fsmw

import blob


class TestMaster(fsmw.Master):
    def __init__(self, config: dict) -> None:
        super().__init__(config["store"], **config.get("options", {}))
        self.config = config
        self.values: dict = {}
        self.report: dict = {}

    def create_input_files(self) -> None:
        self.values = {}
        for i in range(self.config.get("tasks", 10)):
            name = f"t{i:04d}"
            self.values[name] = 1000 * self.round + i
            if name in self.config.get("bad", ()):
                data = b"this is not a task input\n"
            else:
                data = blob.make([name, self.round, self.values[name]],
                                 blob.payload(f"in/{self.round}/{name}", self.config.get("in_bytes")))
            self.create_input_file(name, data)

    def process_output_files(self, outputs) -> bool:
        checked = {}
        for task, path in outputs.items():
            try:
                fields = blob.parse(path.read_bytes(), str(path))
                name, rnd, square, pid, worker_id = fields
                ok = (name == task and int(rnd) == self.round
                      and int(square) == self.values[task] ** 2)
                checked[task] = dict(ok=ok, pid=int(pid), worker_id=worker_id, fields=fields)
            except (OSError, ValueError) as exc:
                checked[task] = dict(ok=False, error=str(exc))
        self.report[str(self.round)] = dict(tasks=sorted(self.values), outputs=checked)
        while self.config.get("hold") and not Path(self.config["hold"]).exists():
            time.sleep(0.02)  # keep the round open (not yet CLOSED) until told
        return self.round < self.config.get("rounds", 1)


def main(argv) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s")
    config = json.loads(Path(argv[1]).read_text())
    master = TestMaster(config)
    summary = master.run()
    result = dict(done=summary.done, duplicates=summary.duplicates, rounds=summary.rounds,
                  failed=[[f.round, f.task, f.error] for f in summary.failed],
                  wall_secs=summary.wall_secs, stopped=summary.stopped, report=master.report)
    Path(config["result"]).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
