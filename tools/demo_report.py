"""A demo run, then ``fsmw report`` on it and a screenshot of the page (docs/report.png).

Usage, from the repository root: python -m tools.demo_report OUT.png [WORKDIR]

A master hands out 48 tasks of 0.2-1.5 s to three workers (the test programs
of tests/support/apps) on a fresh store with a 1.5 s lease and straggler backups
(``lockfile_timeout_threshold=0.25``).  t0007 fails once, t0023 every time;
the worker running t0010 is SIGKILLed a second into it (another breaks its
claim a lease later) and a new worker starts; the one running t0030 gets
SIGTERM (its attempt is interrupted) and another new worker starts; t0040
hangs until its backup copy (started by an idle worker near the end of the
round) has won, then finishes too: its result is discarded as a duplicate.
WORKDIR (default: a new temp directory, removed afterwards) keeps the store,
the logs and report.html.  Needs Chromium.
"""

from __future__ import annotations

import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.support.apps import browser
from tests.support.procs import Procs, execution, fast_options, wait_for

TASKS = 48


def run(work: Path) -> None:
    """Run the demo farm in ``work`` (store: ``work/store``)."""
    store, markers, never = work / "store", work / "markers", str(work / "never")
    markers.mkdir()
    rng = random.Random(7)
    sleep = {f"t{i:04d}": [round(rng.uniform(0.2, 1.5), 2)] for i in range(TASKS)}
    release = work / "release"
    behaviour = dict(markers=str(markers), sleep=sleep, fail={"t0007": 1, "t0023": 99},
                     wait={"t0010": [never, None], "t0030": [never, None], "t0040": [str(release), None]})
    # process_secs: backups only for tasks running over 4 s, so a dead claim is taken over.
    options = fast_options(lease_secs=1.5, lockfile_timeout_threshold=0.25, process_secs=4.0)
    with Procs(work) as procs:
        master = procs.master(store, options, tasks=TASKS)
        workers = [procs.worker(store, i, options, **behaviour) for i in (1, 2, 3)]
        victims, seen, deadline = {"t0010": signal.SIGKILL, "t0030": signal.SIGTERM}, {}, time.time() + 90
        while victims and time.time() < deadline:
            for task in [t for t in victims if execution(markers, t, 1)]:
                # Signal a second after the task started: long enough to show in the picture.
                if time.time() - seen.setdefault(task, time.time()) >= 1.0:
                    victim = procs.by_pid(execution(markers, task, 1)["pid"])
                    victim.signal(victims.pop(task))
                    victim.wait(20)
                    workers.append(procs.worker(store, len(workers) + 1, options, **behaviour))
            time.sleep(0.05)
        wait_for(lambda: (store / "round-000001" / "t0040.out").exists(), 60, "t0040's backup to win")
        release.touch()  # the straggler finishes too: its result is a duplicate
        result = master.result(timeout=120)
        for worker in workers:
            worker.wait(60)
    print(f"demo run: {result['done']} done, failed {[f[1] for f in result['failed']]}")


def main(argv) -> int:
    out = Path(argv[1]).resolve()
    binary = browser.find()
    if binary is None:
        print("demo_report: chromium is not installed", file=sys.stderr)
        return 1
    work = Path(argv[2]) if len(argv) > 2 else Path(tempfile.mkdtemp(prefix="fsmw-demo-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        run(work)
        page = work / "report.html"  # run in WORKDIR, so that the page names the store "store"
        subprocess.run([sys.executable, "-m", "fsmw", "report", "store", "--html", page.name],
                       check=True, timeout=60, cwd=work)
        out.parent.mkdir(parents=True, exist_ok=True)
        browser.screenshot(binary, page, out, size=(1400, 900))
        browser.crop_to_content(out)
    finally:
        if len(argv) <= 2:
            shutil.rmtree(work, ignore_errors=True)
    print(f"wrote {out} ({out.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
