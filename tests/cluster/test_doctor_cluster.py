"""``fsmw doctor`` from several GlusterFS nodes at once.

Node n1 starts first and holds its probe lock for a while; node n2 runs while
n1 still holds it and must be refused that lock (fcntl works across nodes
here); n1, still waiting out its hold, must find the same of n2's lock.  Then
node ``ahead`` (whose client daemon stamps files 10 minutes ahead) runs: its
comparison lists all three hosts and flags its own clock.
"""

from __future__ import annotations

import json
import sys
import time

import pytest

from support.procs import wait_for

pytestmark = pytest.mark.time_limit(120)


def doctor(procs, node, store, *args):
    argv = [sys.executable, "-m", "fsmw", "doctor", str(node.mount / store), *args]
    return procs.start(f"doctor-{node.name}", node.cmd(argv))


def test_doctor_compares_nodes_and_finds_locks_working_across_them(procs, nodes, store_name, record):
    n1, n2, ahead = nodes["n1"], nodes["n2"], nodes["ahead"]
    (n1.mount / store_name).mkdir()
    results = n2.mount / store_name / ".fsmw-doctor"
    started = time.monotonic()
    first = doctor(procs, n1, store_name, "--hold", "6")
    wait_for(lambda: (results / "n1.json").exists(), 20, "n1's result file, seen through n2's mount")
    second = doctor(procs, n2, store_name, "--hold", "4")
    assert second.wait(60) == 0, second.tail()
    second_secs = time.monotonic() - started
    assert "working: refused the lock n1 held" in second.text(), second.text()
    assert first.wait(60) == 0, first.tail()
    ahead_started = time.monotonic()
    skewed = doctor(procs, ahead, store_name, "--hold", "0")
    assert skewed.wait(60) == 0, skewed.tail()
    secs = time.monotonic() - started
    ahead_secs = time.monotonic() - ahead_started
    print(skewed.text())

    table = skewed.text().split("\nhosts ")[1].split("\nrecommended")[0].splitlines()
    rows = {line.split()[0]: line for line in table[2:] if line.strip() and not line.startswith("  !")}
    assert set(rows) == {"n1", "n2", "ahead"}, skewed.text()
    assert " !" in rows["ahead"] and " !" not in rows["n1"] and " !" not in rows["n2"], skewed.text()
    assert "take_lockfile_existence_as_lock=False" in skewed.text()

    facts = {host: json.loads((results / f"{host}.json").read_text()) for host in ("n1", "n2", "ahead")}
    assert facts["n2"]["probes"]["fcntl_hosts"]["hosts"] == {"n1": "working"}
    assert facts["n1"]["probes"]["fcntl_hosts"]["hosts"] == {"n2": "working"}, first.tail()
    assert facts["ahead"]["probes"]["clock"]["offset_s"] == pytest.approx(-600, abs=5)
    for host, result in facts.items():
        assert all(result["probes"][key]["ok"] for key in ("excl", "excl_race", "link", "link_race",
                                                           "rename")), (host, result["probes"])
        assert result["probes"]["fcntl"]["result"] == "working", (host, result["probes"]["fcntl"])
    assert sorted(p.name for p in results.iterdir()) == ["ahead.json", "n1.json", "n2.json"]
    record("doctor on 3 nodes", secs=secs, n2_done_secs=second_secs, one_run_secs=ahead_secs,
           n2_new_name_max_ms=facts["n2"]["probes"]["new_file"]["max_ms"],
           n2_new_mtime_max_ms=facts["n2"]["probes"]["utime"]["max_ms"])
