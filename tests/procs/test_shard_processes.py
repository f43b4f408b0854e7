"""A sharded round run by real processes: a master and two workers over several shards."""

from __future__ import annotations

from collections import Counter

from fsmw import ExitCode
from support.procs import anywhere, executions, fast_options, shard_dirs, wait_for
from support.stores import names, round_dir

TASKS, SHARD_SIZE = 50, 7


def test_a_round_of_50_tasks_in_shards_of_7_is_done_once_by_two_workers(procs, tmp_path):
    store, markers, go = tmp_path / "store", tmp_path / "markers", tmp_path / "go"
    markers.mkdir()
    # A long lease: no claim may go stale on a busy machine, so every task runs exactly once.
    options = fast_options(shard_size=SHARD_SIZE, lease_secs=10.0)
    master = procs.master(store, options, tasks=TASKS)
    wait_for((round_dir(store) / "SEALED").exists, 20, "the master to seal round 1")
    workers = [procs.worker(store, i, options, markers=markers, ready=tmp_path / f"ready{i}",
                            barrier=go, sleep={"*": [0.05]}) for i in (1, 2)]
    wait_for(lambda: all((tmp_path / f"ready{i}").exists() for i in (1, 2)), 30, "both workers up")
    go.touch()

    result = master.result(timeout=90)
    for w in workers:
        code = w.wait(20)
        assert code == int(ExitCode.STOPPED), f"{w.name} exited with {code}\n{w.tail()}"

    tasks = [f"t{i:04d}" for i in range(TASKS)]
    assert result["done"] == TASKS and result["failed"] == [] and result["duplicates"] == 0
    report = result["report"]["1"]
    assert sorted(report["outputs"]) == report["tasks"] == tasks
    assert all(o["ok"] for o in report["outputs"].values())
    assert {o["pid"] for o in report["outputs"].values()} == {w.pid for w in workers}

    shards = shard_dirs(store)
    assert [s.name for s in shards] == [f"shard-{i:06d}" for i in range(-(-TASKS // SHARD_SIZE))]
    inputs = {s.name: names(s, "*.in") for s in shards}
    # No shard holds more than shard_size inputs; every one but the last is full, and the
    # shards hold the inputs in the order the master wrote them.
    assert all(len(found) <= SHARD_SIZE for found in inputs.values()), inputs
    assert [len(found) for found in inputs.values()][:-1] == [SHARD_SIZE] * (len(shards) - 1)
    assert [n for found in inputs.values() for n in found] == [f"{t}.in" for t in tasks]
    # One input per task over all shards, and each task published exactly once, in its input's shard.
    counted = Counter(n for found in inputs.values() for n in found)
    assert counted == Counter(f"{t}.in" for t in tasks)
    outputs = anywhere(store, "*.out")
    assert outputs == [f"{s}/{t}.out" for s, found in inputs.items() for t in
                       (n[:-len(".in")] for n in found)]
    for t in tasks:
        runs = executions(markers, t)
        assert len(runs) == 1, f"{t} ran {len(runs)} times: {runs}"
    assert [n for n in anywhere(store) if ".err." in n or ".dup." in n or ".tmp." in n
            or n.endswith(".failed")] == []
    # Nothing of a task's is in the round's own directory: markers, shards and journals only.
    assert [n for n in names(round_dir(store)) if not n.startswith((".journal.", "shard-"))] == \
        ["CLOSED", "SEALED"]
    assert (round_dir(store) / "CLOSED").read_text() == "next: STOP\n"
