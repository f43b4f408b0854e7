"""condor_submit.txt, exactly as users run it, on a real (personal) HTCondor pool."""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.time_limit(600)


def test_condor_submit_file_runs_master_and_three_workers(condor, record):
    run = condor.new_run_dir("run-submit")
    outside = condor.outside(run)
    # What the README says: from the project directory, `condor_submit condor_submit.txt`.
    for name in ("fsmw", "examples"):
        shutil.copytree(ROOT / name, outside / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "condor_submit.txt", outside / "condor_submit.txt")
    condor.chown(run)
    started = time.monotonic()
    env = dict(PYTHONPATH=f"{run}:/opt/fsmw-deps")
    submitted = condor.run_as_user(f"cd {run} && condor_submit condor_submit.txt", **env)
    assert submitted.returncode == 0, submitted.stderr
    output = submitted.stdout + submitted.stderr
    assert "4 job(s) submitted" in output, output
    assert not re.search(r"deprecat|warning", output, re.I), output
    waited = condor.run_as_user(f"cd {run} && condor_wait -wait 300 fsmw-condor.log", timeout=320)
    assert waited.returncode == 0, waited.stdout + waited.stderr
    secs = time.monotonic() - started
    log = (outside / "fsmw-condor.log").read_text()
    codes = re.findall(r"Normal termination \(return value (\d+)\)", log)
    assert codes == ["0"] * 4, log[-2000:]
    master_out = (outside / "fsmw-master-0.out").read_text()
    assert "round 1: 100 of 100 factorizations check; 0 missing" in master_out
    assert len(re.findall(r"^round 1 problem\d+: \d+ = ", master_out, re.M)) == 100
    for i in (1, 2, 3):
        assert "stop file found" in (outside / f"fsmw-worker-{i}.err").read_text()
    record("HTCondor: condor_submit.txt (master + 3 workers)", secs=secs, tasks=100, jobs=4)
