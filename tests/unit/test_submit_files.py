"""The launch files users run: condor_submit.txt and examples/slurm_submit.sh.

Fast checks without daemons: the HTCondor bindings build the job ads of the
submit file exactly as condor_submit would (catching unknown commands, bad
macros and missing executables), and slurm_submit.sh is run against a
recording stand-in for sbatch.  The real schedulers run them in the cluster
tier (tests/cluster).
"""

from __future__ import annotations

import os
import re
import shlex
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def htcondor(monkeypatch):
    monkeypatch.setenv("CONDOR_CONFIG", "/dev/null")
    return pytest.importorskip("htcondor", reason="pip install htcondor==24.12.24")


def submit_ads(htcondor, text: str):
    """The job ads condor_submit would make (the bindings read up to the first queue)."""
    sub = htcondor.Submit(text)
    items = list(sub.itemdata())
    return list(sub.jobs(itemdata=iter(items)) if items else sub.jobs(count=1))


def test_condor_submit_file_makes_one_master_and_three_workers(htcondor, monkeypatch):
    text = (ROOT / "condor_submit.txt").read_text()
    assert len(re.findall(r"^\s*queue\b", text, re.M | re.I)) == 1, "one queue statement only"
    monkeypatch.chdir(ROOT)
    ads = submit_ads(htcondor, text)
    roles = [Path(ad["Cmd"]).name for ad in ads]
    assert roles == ["master.py", "worker.py", "worker.py", "worker.py"]
    for number, ad in enumerate(ads):
        assert ad["JobUniverse"] == 5  # vanilla
        assert os.access(ad["Cmd"], os.X_OK), f"{ad['Cmd']} is not executable"
        args = shlex.split(ad["Args"])
        assert "--store=store" in args and f"--worker_id={number}" in args
        assert ad["Out"] != ads[0]["Out"] or number == 0  # one log per job


@pytest.mark.parametrize("script", ["master.py", "worker.py"])
def test_condor_arguments_are_flags_the_scripts_accept(htcondor, monkeypatch, script, tmp_path):
    monkeypatch.chdir(ROOT)
    ad = next(a for a in submit_ads(htcondor, (ROOT / "condor_submit.txt").read_text())
              if a["Cmd"].endswith(script))
    probe = ("import sys; sys.path.insert(0, 'examples'); from fsmw import flags; "
             f"flags.parse(['{script}'] + sys.argv[1:]); print('flags ok')")
    done = subprocess.run([sys.executable, "-c", probe] + shlex.split(ad["Args"]),
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0 and "flags ok" in done.stdout, done.stderr


@pytest.mark.parametrize("broken", ["universe = vanila\nexecutable = /bin/true\nqueue\n",
                                    "executable = /bin/true\nrequirements = (a == \nqueue\n"])
def test_a_broken_submit_file_fails_in_the_bindings(htcondor, broken):
    assert submit_ads(htcondor, "executable = /bin/true\nqueue\n")  # the same, unbroken
    with pytest.raises(htcondor.HTCondorException):
        submit_ads(htcondor, broken)


def test_shebangs_name_python3():
    for script in ("master.py", "worker.py"):
        path = ROOT / "examples" / script
        assert path.read_text().startswith("#!/usr/bin/env python3\n")
        assert path.stat().st_mode & stat.S_IXUSR


def test_slurm_submit_script_submits_a_master_and_a_worker_array(tmp_path):
    calls = tmp_path / "sbatch-calls"
    fake = tmp_path / "bin" / "sbatch"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\nprintf '%s\\n' \"$@\" >> " + str(calls) + "\necho ---  >> "
                    + str(calls) + "\necho 4$(grep -c -- --- " + str(calls) + ")\n")
    fake.chmod(0o755)
    env = dict(os.environ, PATH=f"{fake.parent}:{os.environ['PATH']}", PYTHON="/opt/py/bin/python3")
    done = subprocess.run(["sh", str(ROOT / "examples" / "slurm_submit.sh"), "5", "st",
                           "--num_problems=7"], capture_output=True, text=True, cwd=tmp_path,
                          env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "master job 41; worker array 42 (1-5)" in done.stdout
    master, workers = calls.read_text().split("---\n")[:2]
    assert "--job-name=fsmw-master" in master and "--array=1-5" in workers
    assert f"--store='{tmp_path}/st'" in master and "'--num_problems=7'" in master
    assert "--worker_id=$SLURM_ARRAY_TASK_ID" in workers
    assert "/opt/py/bin/python3" in workers and "worker.py" in workers
