"""A master SIGKILLed mid-round and started again resumes the round (issue 11, item 6; real processes)."""

from __future__ import annotations

import os
import signal

from fsmw import ExitCode
from support.procs import executions, fast_options, wait_for
from support.stores import names, round_dir

TASKS = 40


def outputs(store):
    """{name: (inode, mtime_ns, bytes)} of the round's published outputs."""
    found = {}
    for name in names(round_dir(store), "*.out"):
        path = round_dir(store) / name
        st = path.stat()
        found[name] = (st.st_ino, st.st_mtime_ns, path.read_bytes())
    return found


def test_a_master_killed_mid_round_is_restarted_and_the_run_completes_once(procs, tmp_path):
    store, markers = tmp_path / "store", tmp_path / "markers"
    markers.mkdir()
    options = fast_options()
    first = procs.master(store, options, name="master1", tasks=TASKS)
    workers = [procs.worker(store, i, options, markers=markers, sleep={"*": [0.2]}) for i in (1, 2)]
    wait_for(lambda: len(names(round_dir(store), "*.out")) >= 8, 30, "8 outputs")
    first.signal(signal.SIGKILL)
    assert first.wait(10) == -signal.SIGKILL
    before = outputs(store)  # finished while the first master lived
    assert 8 <= len(before) < TASKS, "the round must still be running when the master dies"
    assert (round_dir(store) / "SEALED").exists() and not (round_dir(store) / "CLOSED").exists()

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
    after = outputs(store)
    assert {name: after[name] for name in before} == before  # finished outputs untouched
    for i in range(TASKS):
        runs = executions(markers, f"t{i:04d}")
        assert len(runs) == 1, f"t{i:04d} ran {len(runs)} times: {runs}"
    listing = os.listdir(round_dir(store))
    assert [n for n in listing if ".err." in n or ".dup." in n or n.endswith(".claim.2")] == []
    assert (round_dir(store) / "CLOSED").read_text() == "next: STOP\n"
