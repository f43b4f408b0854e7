"""The example master and a job array of workers submitted to a real Slurm cluster."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from support.procs import wait_for
from support.stores import tasks_dir

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.time_limit(180)


def test_slurm_submit_runs_master_and_worker_array(slurm, tmp_path, record):
    store = tmp_path / "store"
    started = time.monotonic()
    submitted = slurm.run("sh", str(ROOT / "examples" / "slurm_submit.sh"), "3", str(store),
                          "--num_problems=60", "--worker_idle_sleep_secs=1", cwd=tmp_path,
                          env=dict(slurm.env, PYTHON=sys_python()))
    master_job, array_job = re.findall(r"job (\d+)", submitted.stdout)[:1] + \
        re.findall(r"array (\d+)", submitted.stdout)
    ours = {master_job} | {str(int(array_job) + i) for i in range(4)}

    def finished():
        return [j for j in slurm.completions() if j["JobId"] in ours]

    wait_for(lambda: len(finished()) >= 4 and slurm.queue_empty(), 120,
             "the master and three array jobs to finish", interval=0.2)
    secs = time.monotonic() - started
    jobs = finished()
    assert len(jobs) == 4, jobs
    states = [(j["JobId"], j["Name"], j["JobState"], j["ExitCode"]) for j in jobs]
    assert all(s[2:] == ("COMPLETED", "0:0") for s in states), states
    master_log = (tmp_path / f"fsmw-master-{master_job}.out").read_text()
    assert "round 1: 60 of 60 factorizations check; 0 missing" in master_log
    assert len(re.findall(r"^round 1 problem\d+: \d+ = ", master_log, re.M)) == 60
    assert "WRONG" not in master_log
    for task in (1, 2, 3):
        assert (tmp_path / f"fsmw-worker-{array_job}_{task}.out").exists()
    record("Slurm: master + 3-job worker array", secs=secs, tasks=60, jobs=len(jobs))


def test_workers_record_their_slurm_job_id_in_claims(slurm, tmp_path):
    store = tmp_path / "store"
    gate = tmp_path / "go"
    progs = ROOT / "tests" / "support" / "apps"
    config = tmp_path / "worker.json"
    config.write_text('{"store": "%s", "worker_id": 1, "options": {"worker_idle_sleep_secs": 0.2},'
                      ' "wait": {"*": ["%s"]}}' % (store, gate))
    master_cfg = tmp_path / "master.json"
    master_cfg.write_text('{"store": "%s", "tasks": 1, "result": "%s", "options": '
                          '{"master_idle_sleep_secs": 0.2}}' % (store, tmp_path / "result.json"))
    py = sys_python()
    slurm.run("sbatch", "--parsable", f"--output={tmp_path}/m.out",
              f"--wrap={py} {progs}/master.py {master_cfg}")
    array = slurm.run("sbatch", "--parsable", "--array=5-5", f"--output={tmp_path}/w.out",
                      f"--wrap={py} {progs}/worker.py {config}").stdout.strip()
    claim = wait_for(lambda: list(tasks_dir(store).glob("t0000.claim.*")), 60,
                     "the array task to claim the task")[0]
    facts = claim.read_text()
    gate.touch()
    assert f"job_id: slurm:{array}_5" in facts, facts
    wait_for(slurm.queue_empty, 60, "the jobs to finish", interval=0.2)


def sys_python() -> str:
    import sys

    return sys.executable
