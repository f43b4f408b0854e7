"""Soak: repeated randomized runs of a real master and workers, with random SIGKILLs.

Each run draws (from its seed) task durations, tasks that fail once or always,
and the moments at which a random worker is SIGKILLed and replaced; a reader
process watches every input and output while the run goes on (and must have
read each of them by the end).  Rounds are
sharded small (``--shard-size``, default 4: a round of 60 tasks spans 15
shards), so workers move between shards, and judge claims in shards behind
them, while workers die.  Per run it reports tasks lost, duplicates published
(an output replaced after it was seen, or a task whose process_file results
were published twice), torn files, misplaced files (a task without exactly one
input over all shards, a shard over ``shard_size`` inputs or a later shard made
before it was full, an output outside its input's shard), and how long each
killed worker's task took to start again.

Usage, from the repository root (``make soak``):
    python -m tools.soak [--runs N] [--fs local,gluster] [--tasks T] [--shard-size K] [--seed S]
The ``gluster`` file system needs root (it brings up the lab of tools.lab.gluster).
The master, workers and reader are the test apps of tests/support/apps.
Exits 1 if any run lost, duplicated or tore anything.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from tests.support.procs import PROGS, Procs, executions, fast_options, shard_dirs
from tools.lab.gluster import Lab

LEASE = 2.0
SHARD_SIZE = 4


def plan(rng: random.Random, tasks: int) -> dict:
    keys = [f"t{i:04d}" for i in range(tasks)]
    sleeps = {k: [round(rng.uniform(0.0, 0.4), 3)] for k in keys}
    fail = {k: 1 for k in rng.sample(keys, max(1, tasks // 10))}
    always = rng.sample([k for k in keys if k not in fail], max(1, tasks // 30))
    fail.update({k: 99 for k in always})
    return dict(sleep=sleeps, fail=fail, always=always)


def one_run(seed: int, fs: str, tasks: int, base: Path, lab=None, shard_size: int = SHARD_SIZE) -> dict:
    rng = random.Random(seed)
    behaviour = plan(rng, tasks)
    markers = base / "markers"
    markers.mkdir(parents=True)
    mounts = _mounts(fs, lab, base, seed)
    options = fast_options(lease_secs=LEASE, fsync=True, worker_max_idle_secs=60.0, shard_size=shard_size)
    worker_cfg = dict(markers=str(markers), sleep=behaviour["sleep"], fail=behaviour["fail"])
    started = time.monotonic()
    with Procs(base) as procs:
        until, report = base / "until", base / "reader.json"
        procs.start("reader", _cmd(lab, "master", [sys.executable, str(PROGS / "reader.py"),
                                                      _config(base, "reader", dict(
                                                          store=str(mounts["master"]), until=str(until),
                                                          report=str(report)))]))
        master = _start(procs, lab, "master", "master", mounts, options, tasks=tasks)
        alive = {i: _start(procs, lab, f"worker{i}", _node(i), mounts, options, worker_id=i, **worker_cfg)
                 for i in (1, 2, 3)}
        kills, next_id = [], 4
        while master.alive() and time.monotonic() - started < 300:
            time.sleep(rng.uniform(0.5, 2.5))
            if not master.alive():
                break
            victim = alive.pop(rng.choice(sorted(alive)))
            victim.signal(signal.SIGKILL)
            kills.append((victim.pid, time.monotonic()))
            alive[next_id] = _start(procs, lab, f"worker{next_id}", _node(next_id), mounts, options,
                                    worker_id=next_id, **worker_cfg)
            next_id += 1
        result = master.result(timeout=120)
        until.touch()
        procs.all[0].wait(60)
        seen = json.loads(report.read_text())
    return _judge(result, seen, behaviour, markers, kills, tasks, mounts["master"], shard_size,
                  dict(seed=seed, fs=fs, secs=round(time.monotonic() - started, 1)))


def _judge(result, seen, behaviour, markers, kills, tasks, store, shard_size, row) -> dict:
    outputs = result["report"]["1"]["outputs"]
    failed = {task for _round, task, _error in result["failed"]}
    expected = [f"t{i:04d}" for i in range(tasks)]
    row["tasks"] = tasks
    row["lost"] = sum(1 for t in expected if t not in outputs and t not in failed)
    row["wrong"] = sum(1 for o in outputs.values() if not o["ok"])
    row["torn"] = len(seen["torn"])
    # The reader's last pass came after the master's end: it must have read every file.
    row["unread"] = max(0, tasks - seen["in"]) + max(0, len(outputs) - seen["out"])
    files = _task_files(store)
    row["shards"] = len(files) - 1
    row["duplicates_published"] = len(seen["replaced"]) + sum(
        1 for t in expected if sum(f["out"][t] for f in files.values()) > 1)
    row["misplaced"] = _misplaced(files, expected, shard_size)
    row["always_failing_not_failed"] = sum(1 for t in behaviour["always"] if t not in failed)
    row["failed_by_kills"] = len(failed - set(behaviour["always"]))
    row["duplicates_discarded"] = result["duplicates"]
    row["kills"] = len(kills)
    recoveries = _recoveries(markers, expected, kills)
    row["recoveries"] = len(recoveries)
    row["recovery_median_secs"] = round(statistics.median(recoveries), 2) if recoveries else None
    row["recovery_max_secs"] = round(max(recoveries), 2) if recoveries else None
    row["ok"] = not (row["lost"] or row["wrong"] or row["torn"] or row["unread"]
                     or row["duplicates_published"] or row["misplaced"] or row["always_failing_not_failed"])
    return row


def _task_files(store) -> dict:
    """Round 1's inputs and outputs by directory: ``"."`` (the round's own directory, where no
    task file belongs), then each shard in order.  {directory: {"in": Counter, "out": Counter}}
    of task names."""
    top = Path(store, "round-000001")
    found = {}
    for key, directory in [(".", top)] + [(d.name, d) for d in shard_dirs(store)]:
        found[key] = {kind: Counter(p.name[:-len(kind) - 1] for p in directory.glob(f"*.{kind}"))
                      for kind in ("in", "out")}
    return found


def _misplaced(files, expected, shard_size) -> int:
    """Tasks without exactly one input over all shards, with an output outside their input's
    shard, or with a file in the round's own directory; plus shards over ``shard_size`` inputs
    and shards other than the last with fewer (a later shard made before this one was full)."""
    shards = [key for key in files if key != "."]
    bad = sum(files["."]["in"].values()) + sum(files["."]["out"].values())
    where: dict = {}
    for shard in shards:
        for task, n in files[shard]["in"].items():
            where.setdefault(task, []).extend([shard] * n)
    bad += sum(1 for t in expected if len(where.get(t, ())) != 1)
    bad += sum(1 for t in where if t not in expected)
    bad += sum(1 for shard in shards for task in files[shard]["out"] if where.get(task) != [shard])
    sizes = [sum(files[shard]["in"].values()) for shard in shards]
    bad += sum(1 for n in sizes if n > shard_size) + sum(1 for n in sizes[:-1] if n != shard_size)
    return bad


def _recoveries(markers, tasks, kills):
    killed_at = dict(kills)
    times = []
    for task in tasks:
        runs = executions(markers, task)
        for run, later in zip(runs, runs[1:]):  # noqa: B905 (3.9 has no strict=)
            if run["pid"] in killed_at and not run["ended"]:
                times.append(later["mono"] - killed_at[run["pid"]])
    return times


def _node(worker_id: int) -> str:
    return "n1" if worker_id % 2 else "n2"


def _mounts(fs, lab, base, seed):
    if fs == "local":
        store = base / "store"
        return {"master": store, "n1": store, "n2": store}
    name = f"soak-{seed}-{time.monotonic_ns()}"
    return {n: lab.nodes[n].mount / name for n in ("master", "n1", "n2")}


def _cmd(lab, node, argv):
    return lab.nodes[node].cmd(argv) if lab else argv


def _config(base, name, config):
    path = base / f"{name}.json"
    path.write_text(json.dumps(config))
    return str(path)


def _start(procs, lab, name, node, mounts, options, **config):
    config = dict(config, store=str(mounts[node]), options=options)
    prog = "worker.py"
    if name == "master":
        config["result"] = str(procs.dir / "master.result.json")
        prog = "master.py"
    argv = [sys.executable, str(PROGS / prog), _config(procs.dir, name, config)]
    proc = procs.start(name, _cmd(lab, node, argv))
    proc.result_path = Path(config.get("result", "")) if name == "master" else None
    return proc


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per file system (count)")
    parser.add_argument("--fs", default="local", help="comma-separated: local, gluster")
    parser.add_argument("--tasks", type=int, default=60, help="tasks per run (count)")
    parser.add_argument("--shard-size", type=int, default=SHARD_SIZE,
                        help="inputs per shard of a round (count; small, so a round spans many shards)")
    parser.add_argument("--seed", type=int, default=int(time.time()), help="first run's seed")
    parser.add_argument("--json", help="write every run's row to this file")
    args = parser.parse_args(argv)
    systems = args.fs.split(",")
    lab = None
    rows = []
    try:
        if "gluster" in systems:
            lab = Lab(Path("/var/tmp/fsmw-soak-lab"))
            lab.up(["master", "n1", "n2"])
        for fs in systems:
            for run in range(args.runs):
                seed = args.seed + run
                with tempfile.TemporaryDirectory(prefix="fsmw-soak-") as tmp:
                    row = one_run(seed, fs, args.tasks, Path(tmp), lab if fs == "gluster" else None,
                                  args.shard_size)
                rows.append(row)
                print(json.dumps(row), flush=True)
    finally:
        if lab is not None:
            lab.down()
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    bad = [r for r in rows if not r["ok"]]
    total = {k: sum(r[k] for r in rows) for k in ("tasks", "shards", "kills", "recoveries", "lost",
                                                   "duplicates_published", "misplaced", "torn",
                                                   "duplicates_discarded")}
    print(f"soak: {len(rows)} runs, {total}; {len(bad)} bad runs")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
