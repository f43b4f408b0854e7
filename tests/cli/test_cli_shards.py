"""``fsmw status``, ``report``, ``requeue`` and ``clean`` on rounds of several shards, and on old stores.

A round's tasks are spread over ``round-k/shard-NNNNNN/`` directories of
``shard_size`` tasks each; the commands read every shard.  The real runs use
``shard_size=3`` and 7 tasks: shard 0 holds t0000-t0002, shard 1 t0003-t0005
and shard 2 t0006.  A store written before shards (task files directly in
``round-k/``) must still be read.  As in ``test_cli``, every command runs as
``python -m fsmw ...`` (``requeue --stale`` in one pass with a fake clock, as
in ``test_requeue_stale``).
"""

from __future__ import annotations

import argparse
import os
import re

from fsmw.cli.repair import requeue_command
from support.clock import FakeClock
from support.procs import executions, fast_options, fsmw, status_json, wait_for
from support.stores import foreign_claim, make_round, names, round_dir, tasks_dir

SHARDED = dict(shard_size=3)
BAR = re.compile(r'<g><title>([^<]*)</title>(.*?)</g>')


def report_page(store, out):
    code, _, err = fsmw("report", store, "--html", out)
    assert code == 0 and err == "", err
    return out.read_text(encoding="utf-8")


def table_row(page, first):
    row = re.search(rf"<tr[^>]*><td>{first}</td>(.*?)</tr>", page)
    assert row, f"no table row {first!r}"
    return re.findall(r"<td>(.*?)</td>", row.group(1))


def bar_titles(page):
    return [title for title, _ in BAR.findall(page)]


def shard_files(store, shard, pattern="*"):
    return names(tasks_dir(store, 1, shard), pattern)


def test_status_report_and_requeue_failed_on_a_round_of_several_shards(procs, tmp_path):
    store, markers, hold = tmp_path / "store", tmp_path / "markers", tmp_path / "hold"
    markers.mkdir()
    options = fast_options(max_attempts=2)
    master = procs.master(store, dict(options, **SHARDED), tasks=7)
    # t0004 (shard 1) fails twice, which is all its attempts; t0006 (shard 2) runs until told.
    workers = [procs.worker(store, i, options, markers=str(markers), fail={"t0004": 2},
                            wait={"t0006": [str(hold)]}) for i in (1, 2)]
    wait_for(lambda: (tasks_dir(store, 1, 1) / "t0004.failed").exists(), 20, "t0004 to fail twice")
    wait_for(lambda: status_json(store)["rounds"][0]["done"] == 5, 20, "the other tasks")
    assert names(round_dir(store), "[!.]*") == ["SEALED", "shard-000000", "shard-000001", "shard-000002"]
    assert [shard_files(store, i, "*.in") for i in range(3)] == [
        ["t0000.in", "t0001.in", "t0002.in"], ["t0003.in", "t0004.in", "t0005.in"], ["t0006.in"]]

    state = status_json(store)["rounds"][0]  # every shard counted
    assert (state["tasks"], state["done"], state["pending"], list(state["failed"])) == (7, 5, 0, ["t0004"])
    assert "boom" in state["failed"]["t0004"]  # its error, read from shard 1
    (running,) = state["running"]  # in shard 2, its heartbeat read there
    assert running["task"] == "t0006" and running["heartbeat_age"] is not None
    assert running["heartbeat_age"] < 5 and running["worker_id"] in ("1", "2")
    code, text, _ = fsmw("status", store)
    assert code == 0 and "failed   round 1 t0004: " in text and "t0006 attempt 1: worker " in text

    page = report_page(store, tmp_path / "mid.html")
    # state tasks done failed pending running
    assert table_row(page, "1")[:6] == ["sealed", "7", "5", "1", "0", "1"]
    titles = bar_titles(page)  # (finished attempts may still wait in their workers' journals)
    assert any(t.startswith("t0006 (round 1) attempt 1: running") and t.endswith(f"/{running['pid']}")
               for t in titles), titles  # from t0006's claim record, in shard 2

    code, out, _ = fsmw("requeue", store, "--failed", "--dry-run")
    assert code == 0 and "would requeue 1 task(s)" in out
    assert (tasks_dir(store, 1, 1) / "t0004.failed").exists() and not (round_dir(store) / "REQUEUED").exists()
    code, out, _ = fsmw("requeue", store, "--failed")
    assert code == 0 and "t0004: failed -> pending" in out and "requeued 1 task(s)" in out
    assert "requeued" in (round_dir(store) / "REQUEUED").read_text()  # workers look at every shard again
    assert not (tasks_dir(store, 1, 1) / "t0004.failed").exists()
    assert shard_files(store, 1, "t0004.err.*") == ["t0004.err.1.requeued", "t0004.err.2.requeued"]
    state = status_json(store)["rounds"][0]
    assert state["failed"] == {} and state["done"] + state["pending"] + len(state["running"]) == 7

    hold.touch()
    result = master.result(timeout=30)
    assert result["done"] == 7 and result["failed"] == []
    assert len(executions(markers, "t0004")) == 3  # found again in shard 1, which its workers had passed
    assert (tasks_dir(store, 1, 1) / "t0004.out").exists()
    assert shard_files(store, 1, "t0004.err.*") == ["t0004.err.1.requeued", "t0004.err.2.requeued"]
    assert all(w.wait(20) == 0 for w in workers)
    final = status_json(store)["rounds"][0]
    assert (final["tasks"], final["done"], final["pending"], final["failed"], final["closed"]) == \
        (7, 7, 0, {}, True)


def test_report_and_clean_of_a_closed_round_of_several_shards(procs, tmp_path):
    store, markers, out = tmp_path / "store", tmp_path / "markers", tmp_path / "report.html"
    markers.mkdir()
    master = procs.master(store, fast_options(**SHARDED), tasks=7)
    worker = procs.worker(store, 1, fast_options(), markers=str(markers), fail={"t0004": 1})
    result = master.result(timeout=30)
    assert result["done"] == 7 and result["failed"] == [] and worker.wait(20) == 0

    page = report_page(store, out)
    # state tasks done failed pending running duplicates | attempts: all, failed, backups, takeovers
    assert table_row(page, "1")[:11] == ["closed", "7", "7", "0", "0", "0", "0", "8", "1", "0", "0"]
    titles = bar_titles(page)
    assert len(titles) == 8 and sum(t.startswith("t0004 (round 1) attempt 1: failed") for t in titles) == 1

    # What dead workers leave in the shards of the closed round, and in an open round 2.
    old = [tasks_dir(store, 1, 1) / ".tmp.h.1.old", tasks_dir(store, 1, 1) / ".worker.h.7.ab",
           tasks_dir(store, 1, 2) / ".worker.h.8.cd", tasks_dir(store, 1, 2) / ".tmp.h.4.old",
           round_dir(store) / ".tmp.h.3.old"]
    new = [tasks_dir(store, 1, 0) / ".tmp.h.2.new", tasks_dir(store, 1, 2) / ".worker.h.5.new"]
    still_open = tasks_dir(store, 2, 0)
    still_open.mkdir(parents=True)
    old.append(still_open / ".tmp.h.6.old")
    kept_token = still_open / ".worker.h.9.ef"  # a token in an open round may be in use
    for path in old + new + [kept_token]:
        path.write_text("x")
    for path in old + [kept_token]:
        os.utime(path, (1, 1))
    claims = sorted(p.name for p in store.glob("round-000001/shard-*/*.claim.*"))
    assert len(claims) == 8  # t0004.claim.1 and .2, one for each other task: all finished
    code, text, _ = fsmw("clean", store, "--dry-run")
    assert code == 0 and f"{len(old) + len(claims)} file(s) to remove" in text
    assert all(p.exists() for p in old)
    code, text, _ = fsmw("clean", store)
    assert code == 0 and f"{len(old) + len(claims)} file(s) removed" in text
    assert not [p for p in old if p.exists()] and all(p.exists() for p in new + [kept_token])
    assert not list(store.glob("round-000001/shard-*/*.claim.*"))
    for shard, tasks in enumerate((("t0000", "t0001", "t0002"), ("t0003", "t0004", "t0005"), ("t0006",))):
        left = shard_files(store, shard)
        assert [n for n in left if n.endswith((".in", ".out"))] == sorted(
            [f"{t}.in" for t in tasks] + [f"{t}.out" for t in tasks])
    assert shard_files(store, 1, "t0004.err.*") == ["t0004.err.1"]  # records stay
    assert names(round_dir(store), "[A-Z]*") == ["CLOSED", "SEALED"]


def test_requeue_stale_breaks_a_dead_claim_in_a_later_shard(tmp_path, capsys):
    store = make_round(tmp_path, {"a": 1, "b": 2})  # shard 0
    later = store.round(1).shard(1)
    later.create()
    for name in ("c", "d"):
        later.write_input(name, b"3", False)
    dead = tasks_dir(tmp_path, 1, 1) / "d.claim.1"
    dead.write_bytes(b"host: elsewhere\npid: 1\nworker_id: 9\n")
    live = foreign_claim(store, "a")

    def heartbeat(secs):  # a's holder touches its claim while the command watches
        mtime = os.stat(live).st_mtime_ns + int(secs * 1e9)
        os.utime(live, ns=(mtime, mtime))

    clock = FakeClock(on_sleep=heartbeat)
    args = argparse.Namespace(store=str(tmp_path), failed=False, stale=True, lease=10.0, dry_run=False)
    assert requeue_command(args, clock) == 0
    assert capsys.readouterr().out.splitlines() == [
        "watching 2 running claim(s) for 10 s ...",
        "round 1 d: claim 1 silent for 10 s (worker 9@elsewhere) -> pending", "requeued 1 task(s)"]
    assert "requeued by fsmw requeue" in (tasks_dir(tmp_path, 1, 1) / "d.err.1").read_text()
    assert dead.read_text().startswith("broken_by: fsmw requeue\n")
    assert shard_files(tmp_path, 1) == ["c.in", "d.claim.1", "d.err.1", "d.in"]  # nothing else won
    assert shard_files(tmp_path, 0) == ["a.claim.1", "a.in", "b.in"]  # the live claim stays
    assert (round_dir(tmp_path) / "REQUEUED").exists()
    state = status_json(tmp_path)["rounds"][0]
    assert (state["tasks"], state["pending"], [r["task"] for r in state["running"]]) == (4, 3, ["a"])


def old_round(store, number, files, markers):
    """Round ``number`` as an fsmw before shards wrote it: task files in the round directory."""
    path = round_dir(store, number)
    path.mkdir(parents=True)
    for name, data in {**files, **markers}.items():
        (path / name).write_bytes(data)
    return path


def test_a_store_of_the_old_layout_is_still_read(tmp_path):
    store = tmp_path / "store"
    claim = b"task: b\nattempt: 1\nhost: node3\npid: 77\nworker_id: 3\n"
    old_round(store, 1, {"a.in": b"1", "a.claim.1": b"", "a.out": b"1", "b.in": b"2", "b.claim.1": claim,
                         "c.in": b"3", "c.claim.1": b"", "c.err.1": b"error: boom\n",
                         "c.failed": b"attempts: 1\nerror: boom\n", "d.in": b"4", "e.in": b"5",
                         "e.out": b"5", "e.dup.ab12": b"", ".tmp.h.1.old": b"x"},
              {"SEALED": b"tasks: 5\n"})
    make_round(store, ["p", "q"], 2, outputs=["q"])  # and the next round, in shards

    first, second = status_json(store)["rounds"]
    assert (first["tasks"], first["done"], first["pending"], list(first["failed"]), first["duplicates"]) \
        == (5, 2, 1, ["c"], 1)
    assert [(r["task"], r["worker_id"], r["host"]) for r in first["running"]] == [("b", "3", "node3")]
    assert first["running"][0]["heartbeat_age"] is not None and first["failed"]["c"].startswith("boom")
    assert (second["tasks"], second["done"], second["pending"], second["failed"]) == (2, 1, 1, {})
    code, text, _ = fsmw("status", store)
    assert code == 0 and "2 round(s)" in text and "failed   round 1 c: boom" in text

    page = report_page(store, tmp_path / "report.html")
    assert table_row(page, "1")[:7] == ["sealed", "5", "2", "1", "1", "1", "1"]
    assert table_row(page, "2")[:5] == ["sealed", "2", "1", "0", "1"]


def test_requeue_and_clean_work_on_rounds_of_the_old_layout(tmp_path):
    store = tmp_path / "store"
    closed = old_round(store, 1, {"a.in": b"1", "a.claim.1": b"", "a.out": b"1", "b.in": b"2",
                                  "b.claim.1": b"", "b.claim.2": b"", "b.out": b"4", ".tmp.h.1.old": b"x",
                                  ".tmp.h.2.new": b"x", ".worker.h.7.ab": b"x"},
                       {"SEALED": b"tasks: 2\n", "CLOSED": b"next: round-000002\n"})
    still_open = old_round(store, 2, {"a.in": b"1", "a.claim.1": b"", "a.err.1": b"error: boom\n",
                                      "a.failed": b"attempts: 1\nerror: boom\n", "b.in": b"2",
                                      ".worker.h.9.ef": b"x"}, {"SEALED": b"tasks: 2\n"})
    for old in (closed / ".tmp.h.1.old", closed / ".worker.h.7.ab", still_open / ".worker.h.9.ef"):
        os.utime(old, (1, 1))

    code, out, _ = fsmw("requeue", store, "--failed")
    assert code == 0 and "a: failed -> pending" in out and "requeued 1 task(s)" in out
    assert names(still_open, "[!.]*") == ["REQUEUED", "SEALED", "a.claim.1.requeued", "a.err.1.requeued",
                                          "a.in", "b.in"]
    assert not (closed / "REQUEUED").exists()  # a closed round is not requeued
    state = status_json(store)["rounds"][1]
    assert (state["tasks"], state["pending"], state["failed"]) == (2, 2, {})

    code, text, _ = fsmw("clean", store)
    removed = sorted(line.split(" ", 1)[1] for line in text.splitlines() if line.startswith("removed "))
    assert code == 0 and "5 file(s) removed" in text  # each once
    assert removed == sorted(str(closed / n) for n in (".tmp.h.1.old", ".worker.h.7.ab", "a.claim.1",
                                                       "b.claim.1", "b.claim.2"))
    assert names(closed, "[!.]*") == ["CLOSED", "SEALED", "a.in", "a.out", "b.in", "b.out"]
    assert (closed / ".tmp.h.2.new").exists() and (still_open / ".worker.h.9.ef").exists()
