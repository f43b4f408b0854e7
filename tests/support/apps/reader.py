#!/usr/bin/env python3
"""Test reader: polls every round directory and its shards and checks every .in and .out it sees.

Config (JSON, argv[1]): store; until (stop after this file appears, with one
last pass); report (JSON path: counts of checked files, every torn read, and
every output that was replaced by another file after the reader saw it).
A file is read whole each time its (inode, size, mtime) is new to the reader.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import blob


def listdir(directory: Path) -> list:
    try:
        return os.listdir(directory)
    except FileNotFoundError:
        return []


def one_pass(store: Path, seen: dict, report: dict) -> None:
    rounds = [store / n for n in listdir(store) if n.startswith("round-")]
    # Task files are in the rounds' shards (round-k/shard-NNNNNN/); the round directories
    # themselves are read too, so that a task file misplaced there is checked all the same.
    directories = rounds + [r / n for r in rounds for n in listdir(r) if n.startswith("shard-")]
    for directory in directories:
        for name in listdir(directory):
            kind = name.rpartition(".")[2]
            if name.startswith(".") or kind not in ("in", "out"):
                continue
            path = directory / name
            try:
                with open(path, "rb") as f:
                    st = os.fstat(f.fileno())
                    key = (st.st_ino, st.st_size, st.st_mtime_ns)
                    if seen.get(path) == key:
                        continue
                    data = f.read()
            except FileNotFoundError:
                continue
            first = seen.get(path)
            if kind == "out" and first is not None and first[0] != key[0]:
                report["replaced"].append(str(path))
            seen[path] = key
            report[kind] += 1
            try:
                blob.parse(data, str(path))
            except ValueError as exc:
                report["torn"].append(str(exc))


def main(argv) -> int:
    config = json.loads(Path(argv[1]).read_text())
    store, until = Path(config["store"]), Path(config["until"])
    seen: dict = {}
    report = {"in": 0, "out": 0, "passes": 0, "torn": [], "replaced": []}
    while True:
        last = until.exists()
        one_pass(store, seen, report)
        report["passes"] += 1
        if last:
            break
    Path(config["report"]).write_text(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
