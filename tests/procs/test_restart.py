"""A master SIGKILLed mid-round and started again resumes the round (issue 11, item 6; real processes)."""

from __future__ import annotations

import signal

import pytest

from fsmw import ExitCode
from support.procs import anywhere, executions, fast_options, shard_dirs, wait_for
from support.stores import names, round_dir

TASKS = 40


def outputs(store):
    """{shard/name: (inode, mtime_ns, bytes)} of the round's published outputs, over all shards."""
    found = {}
    for shard in shard_dirs(store):
        for name in names(shard, "*.out"):
            path = shard / name
            st = path.stat()
            found[f"{shard.name}/{name}"] = (st.st_ino, st.st_mtime_ns, path.read_bytes())
    return found


@pytest.mark.parametrize("shard_size", [1000, 7], ids=["one-shard", "six-shards"])
def test_a_master_killed_mid_round_is_restarted_and_the_run_completes_once(procs, tmp_path, shard_size):
    store, markers = tmp_path / "store", tmp_path / "markers"
    markers.mkdir()
    options = fast_options(shard_size=shard_size)
    first = procs.master(store, options, name="master1", tasks=TASKS)
    workers = [procs.worker(store, i, options, markers=markers, sleep={"*": [0.2]}) for i in (1, 2)]
    wait_for(lambda: len(outputs(store)) >= 8, 30, "8 outputs")
    first.signal(signal.SIGKILL)
    assert first.wait(10) == -signal.SIGKILL
    before = outputs(store)  # finished while the first master lived
    assert 8 <= len(before) < TASKS, "the round must still be running when the master dies"
    assert (round_dir(store) / "SEALED").exists() and not (round_dir(store) / "CLOSED").exists()
    shards = shard_dirs(store)
    assert len(shards) == -(-TASKS // shard_size)

    second = procs.master(store, options, name="master2", tasks=TASKS)
    result = second.result(timeout=60)
    for w in workers:
        code = w.wait(20)
        assert code == int(ExitCode.STOPPED), f"{w.name} exited with {code}\n{w.tail()}"

    assert "round 1 was left open by an earlier master; resuming it" in second.text()
    assert result["done"] == TASKS and result["failed"] == [] and result["rounds"] == 1
    report = result["report"]["1"]
    assert sorted(report["outputs"]) == report["tasks"] and all(o["ok"] for o in report["outputs"].values())
    assert names(store, "round-*") == ["round-000001"]  # resumed, not rerun in a new round
    assert shard_dirs(store) == shards  # resumed in place: no shard added
    after = outputs(store)
    assert {name: after[name] for name in before} == before  # finished outputs untouched
    assert sorted(name.rpartition("/")[2] for name in after) == [f"t{i:04d}.out" for i in range(TASKS)]
    for i in range(TASKS):
        runs = executions(markers, f"t{i:04d}")
        assert len(runs) == 1, f"t{i:04d} ran {len(runs)} times: {runs}"
    listing = anywhere(store)
    assert [n for n in listing if ".err." in n or ".dup." in n or n.endswith(".claim.2")] == []
    assert (round_dir(store) / "CLOSED").read_text() == "next: STOP\n"
