"""Tests of ``fsmw report``: real runs, hand-made and damaged stores, and the page in Chromium.

The command always runs as ``python -m fsmw report`` in a subprocess with a
deadline.  Hand-made stores put journal lines where workers would; the browser
test renders a page in headless Chromium (``support/apps/browser.py``, which
kills the browser's process group afterwards) and looks at its DOM and pixels.
"""

from __future__ import annotations

import html
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import List, Tuple

import pytest

from fsmw._core.owner import host_name
from fsmw.cli.report_html import COLOURS, MAX_DETAILED
from support.apps import browser
from support.procs import execution, fast_options, wait_for
from support.stores import make_round, tasks_dir

T0 = time.time() - 600  # hand-made runs happened ten minutes ago
BAR = re.compile(r'<g><title>([^<]*)</title>(.*?)</g>')


def report(store: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fsmw", "report", str(store), "--html", str(out),
                           *extra], capture_output=True, text=True, timeout=60)


def ok_report(store: Path, out: Path, *extra: str) -> str:
    done = report(store, out, *extra)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    return out.read_text(encoding="utf-8")


def bars(page: str) -> List[Tuple[str, str]]:
    """(tooltip, class) of every bar drawn; lost attempts have class ``lost``."""
    found = []
    for title, body in BAR.findall(page):
        cls = re.search(r'class="([^"]*)"', body)
        found.append((title, "lost" if 'class="lost"' in body else cls.group(1).strip() if cls else ""))
    return found


def table_row(page: str, first: str) -> List[str]:
    row = re.search(rf"<tr[^>]*><td>{first}</td>(.*?)</tr>", page)
    assert row, f"no table row {first!r}"
    return re.findall(r"<td>(.*?)</td>", row.group(1))


def line(task: str, start: float, secs: float, outcome: str = "published", kind: str = "claim",
         attempt: int = 1, worker: int = 1, host: str = "node1") -> dict:
    return dict(task=task, attempt=attempt, kind=kind, outcome=outcome, worker_id=worker, host=host,
                pid=1000 + worker, job_id=None, claimed=T0 + start, ended=T0 + start + secs)


# -- a real run --------------------------------------------------------------
@pytest.mark.time_limit(90)
def test_report_of_a_real_run_with_a_failure_and_a_sigkill(procs, tmp_path):
    store, markers, out = tmp_path / "store", tmp_path / "markers", tmp_path / "report.html"
    markers.mkdir()
    options = fast_options(lease_secs=1.5)
    master = procs.master(store, options, tasks=8)
    # t0002 fails once; the first execution of t0005 hangs until its worker is killed.
    behaviour = dict(markers=markers, fail={"t0002": 1}, sleep={"*": [0.2]},
                     wait={"t0005": [str(tmp_path / "never"), None]})
    workers = [procs.worker(store, i, options, **behaviour) for i in (1, 2)]
    victim = procs.by_pid(wait_for(lambda: execution(markers, "t0005", 1), 30, "t0005 to start")["pid"])
    survivor = next(w for w in workers if w is not victim)

    page = ok_report(store, out)  # mid-run: t0005 is running (its claim is in the store)
    assert table_row(page, "1")[5] in ("1", "2"), "running count (the other worker may be busy too)"
    assert any(c == "running claim" and title.startswith("t0005 (round 1) attempt 1: running")
               and f"/{victim.pid}" in title for title, c in bars(page))

    victim.crash()  # with its keeper: the claim is lost and taken over after the lease
    assert victim.wait(10) == -signal.SIGKILL
    result = master.result(timeout=40)
    assert survivor.wait(20) == 0
    assert result["done"] == 8 and result["failed"] == []

    page = ok_report(store, out)
    # state tasks done failed pending running duplicates | attempts: all, failed, backups, takeovers
    assert table_row(page, "1")[:11] == ["closed", "8", "8", "0", "0", "0", "0", "9", "1", "0", "1"]
    assert table_row(page, "all")[1:11] == ["8", "8", "0", "0", "0", "0", "9", "1", "0", "1"]
    drawn = bars(page)
    classes = sorted(c for _, c in drawn)
    assert classes == ["failed claim", "lost"] + ["published break"] + ["published claim"] * 7, drawn
    for worker_id, w in enumerate(workers, 1):  # a row each, and their bars on it
        assert any(t.endswith(f", {host_name()}/{worker_id}/{w.pid}") for t, _ in drawn), w.name
    titles = {c: t for t, c in drawn}
    assert titles["failed claim"].startswith("t0002 (round 1) attempt 1: failed, ")
    assert titles["published break"].startswith("t0005 (round 1) attempt 2: published, took over")
    assert f"/{survivor.pid}" in titles["published break"] and f"/{victim.pid}" in titles["lost"]
    assert "t0005 (round 1) attempt 1: lost" in titles["lost"]
    assert re.search(r"<td>\d+\.\d s</td><td>\d+\.\d\d tasks/s</td></tr>", page)
    assert "<script" not in page and not re.search(r"\b(?:src|href)=", page), "not self-contained"


# -- hand-made stores ----------------------------------------------------------
def test_empty_store_gives_a_page_that_says_so(tmp_path):
    store, out = tmp_path / "store", tmp_path / "report.html"
    store.mkdir()
    page = ok_report(store, out)
    assert "No rounds in this store yet" in page and "<svg" not in page

    make_round(store, ["a", "b", "c"])  # sealed, nobody working yet
    page = ok_report(store, out)
    assert table_row(page, "1")[:7] == ["sealed", "3", "0", "0", "3", "0", "0"]
    assert "No attempts journaled yet" in page


def test_rounds_are_counted_apart_and_together_and_can_be_picked(tmp_path):
    store, out = tmp_path / "store", tmp_path / "report.html"
    make_round(store, ["a", "b"], outputs=["a", "b"], closed=True,
               journal=[line("a", 0, 2), line("b", 0, 4, worker=2)])
    make_round(store, ["a", "b", "c"], 2, outputs=["c"], journal=[line("c", 5, 1)])
    page = ok_report(store, out)
    assert table_row(page, "1")[:8] == ["closed", "2", "2", "0", "0", "0", "0", "2"]
    assert table_row(page, "2")[:8] == ["sealed", "3", "1", "0", "2", "0", "0", "1"]
    assert table_row(page, "all")[:13] == ["2 round(s)", "5", "3", "0", "2", "0", "0", "3", "0", "0",
                                           "0", "6.0 s", "0.50 tasks/s"]
    assert ">round 1</text>" in page and ">round 2</text>" in page and len(bars(page)) == 3

    page = ok_report(store, out, "--round", "2")
    assert "<tr><td>1</td>" not in page and table_row(page, "all")[:3] == ["1 round(s)", "3", "1"]
    assert [t.split(" (")[0] for t, _ in bars(page)] == ["c"] and ">round 1</text>" not in page


def test_missing_store_and_bad_arguments_exit_1_naming_the_path(tmp_path):
    out, a_file = tmp_path / "report.html", tmp_path / "a-file"
    a_file.write_text("")
    for store, words in ((tmp_path / "nope", "does not exist"), (a_file, "is not a directory")):
        done = report(store, out)
        assert done.returncode == 1 and done.stdout == "" and not out.exists()
        assert done.stderr.count("\n") == 1 and str(store) in done.stderr and words in done.stderr
    store = tmp_path / "store"
    make_round(store, ["a"], outputs=["a"], closed=True)
    done = report(store, out, "--round", "7")
    assert done.returncode == 1 and "has no round 7" in done.stderr and str(store) in done.stderr
    target = tmp_path / "no-dir" / "r.html"
    done = report(store, target)
    assert done.returncode == 1 and str(target) in done.stderr and done.stderr.count("\n") == 1
    assert not list(tmp_path.glob("**/.tmp.*"))


def test_damaged_store_is_reported_without_the_damage(tmp_path):
    store, out = tmp_path / "store", tmp_path / "report.html"
    evil = "<img src=x onerror=alert(1)>"
    good = [line("t1", 0, 2), line(evil, 2, 1, "failed", host="<b>h</b>"), line("t2", 3, 1, worker=2)]
    rd = make_round(store, ["t1", "t2", evil], outputs=["t1", "t2"], journal=good, closed=True).round_dir(1)
    garbage = ["not json", '{"task": "t9", "attempt"', "[]", "42", "null", '"text"',
               '{"outcome": "published"}', json.dumps(dict(line("t3", 0, 1), claimed="soon")),
               json.dumps(dict(line("t4", 0, 1), claimed=1.0)),  # 1970: garbage
               json.dumps(dict(line("t5", 0, 1), outcome="exploded")),
               json.dumps(dict(line("t6", 0, 1), attempt="1.5")),
               '{"claimed": NaN, "ended": Infinity, "outcome": "failed", "attempt": 1}']
    (rd / ".journal.bad.1.ffff").write_bytes("\n".join(garbage).encode() + b"\n\xff\xfe{\x00\n{\"task")
    (rd / ".journal.deep.3.dddd").write_text("[" * 100_000 + "\n")  # json.loads: RecursionError
    (rd / ".journal.dir.2.eeee").mkdir()  # a directory where a journal would be
    shard = tasks_dir(store)
    for name in ("notes.txt", "x.in.bak", "t1.err.abc", "t1.claim.x", "zz.dup.nothex", "README"):
        (rd / name).write_text("not fsmw's\n")
        (shard / name).write_text("not fsmw's\n")
    (shard / f"{evil}.claim.2").write_text("garbage claim record")  # running, but no start time
    (shard / "t7.claim.1").mkdir()  # a claim that is a directory: running, unreadable
    (rd / "shard-abc").mkdir()  # not a shard's name
    (store / "round-000002").write_text("a file where a round directory should be\n")
    (store / "round-abc").mkdir()

    page = ok_report(store, out)
    assert evil not in page and "<b>h</b>" not in page and html.escape(evil) in page
    drawn = bars(page)
    assert sorted(c for _, c in drawn) == ["failed claim", "published claim", "published claim"]
    assert table_row(page, "1")[:7] == ["closed", "3", "2", "0", "0", "2", "0"]
    assert "round 2: cannot list" in page and str(store / "round-000002") in page
    assert not list(store.glob("**/.tmp.*"))


@pytest.mark.time_limit(120)
def test_100k_attempts_make_a_small_page_quickly(tmp_path):
    store, out = tmp_path / "store", tmp_path / "report.html"
    workers, per_worker = 50, 2000  # 100k attempts of 0.5 s on 50 workers over 1000 s
    tasks = [f"t{i:06d}" for i in range(workers * per_worker)]
    journal = [line(tasks[w * per_worker + k], k * 0.5, 0.45, worker=w,
                    outcome="failed" if k % 97 == 0 else "published")
               for w in range(workers) for k in range(per_worker)]
    make_round(store, [], journal=journal, closed=True)  # no inputs or outputs: the journals count
    started = time.monotonic()
    page = ok_report(store, out)
    secs = time.monotonic() - started
    assert secs < 30, f"report took {secs:.1f} s"
    assert len(page) < 5_000_000, f"page of {len(page)} bytes"
    assert table_row(page, "1")[7] == str(workers * per_worker)
    drawn = bars(page)
    assert 0 < len(drawn) < MAX_DETAILED
    merged = [int(t.split()[0]) if " attempts " in t else 1 for t, c in drawn if c == "published claim"]
    assert sum(merged) == sum(e["outcome"] == "published" for e in journal)


# -- the page in a browser ---------------------------------------------------
def chromium_or_skip() -> str:
    binary = browser.find()
    if binary is None:
        if os.environ.get("FSMW_REQUIRE_BROWSER") == "1":
            pytest.fail("FSMW_REQUIRE_BROWSER=1 but chromium is not installed "
                        "(apt-get install -y --no-install-recommends chromium)")
        pytest.skip("chromium is not installed (apt-get install chromium; "
                    "FSMW_REQUIRE_BROWSER=1 turns this skip into a failure)")
    return binary


@pytest.mark.time_limit(120)
def test_page_renders_in_headless_chromium(tmp_path):
    binary = chromium_or_skip()
    store, out, png = tmp_path / "store", tmp_path / "report.html", tmp_path / "report.png"
    journal = [line("a", 0, 4), line("b", 4, 2, "failed"), line("b", 6, 3, attempt=2),
               line("c", 0, 3, "duplicate", worker=2), line("d", 3, 3, "interrupted", worker=2),
               line("d", 6, 2, kind="break", attempt=2, worker=2),
               line("e", 8, 2, kind="backup", attempt=2, worker=2)]
    make_round(store, list("abcdef"), outputs=list("abcde"), journal=journal)
    claim = tasks_dir(store) / "f.claim.1"  # a running task, its last heartbeat at 12 s
    started = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(T0 + 9))
    claim.write_text(f"task: f\nattempt: 1\nhost: node3\npid: 77\nworker_id: 3\nstarted: {started}\n")
    os.utime(claim, (T0 + 12, T0 + 12))
    ok_report(store, out)

    dom = browser.dump_dom(binary, out, timeout=60)
    titles = re.findall(r"<title>([^<]*)</title>", dom[dom.index("<svg"):])
    assert len(titles) == 8, titles
    for needle in ("a (round 1) attempt 1: published, 4.00 s", "b (round 1) attempt 1: failed",
                   "c (round 1) attempt 1: duplicate", "d (round 1) attempt 1: interrupted",
                   "d (round 1) attempt 2: published, took over a stale claim",
                   "e (round 1) attempt 2: published, backup copy", "f (round 1) attempt 1: running"):
        assert any(t.startswith(needle) for t in titles), f"no bar titled {needle!r}: {titles}"
    assert len(re.findall(r'<rect [^>]*class="(?:published|failed|duplicate|interrupted|running) ', dom)) \
        >= 8, "bars missing from the DOM"

    browser.screenshot(binary, out, png, size=(1400, 900), timeout=60)
    width, height, _, _ = browser.read_png(png)
    assert (width, height) == (1400, 900)
    counts = browser.colours(png)
    legend_swatch = 14 * 12
    for outcome in ("published", "failed", "duplicate", "interrupted", "running"):
        seen = browser.count_near(counts, COLOURS[outcome])
        assert seen > 4 * legend_swatch, f"{outcome} ({COLOURS[outcome]}): only {seen} pixels"
