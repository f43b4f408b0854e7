"""The launch files users run: condor_submit.txt, examples/slurm_submit.sh and the
generic workers' examples/fsmw_worker.sub and examples/fsmw_worker_slurm.sh.

Fast checks without daemons: the HTCondor bindings build the job ads of the
submit files exactly as condor_submit would (catching unknown commands, bad
macros and missing executables), slurm_submit.sh is run against a recording
stand-in for sbatch, and fsmw_worker_slurm.sh (the batch script sbatch runs)
against a recording stand-in for its Python.  The real schedulers run them in
the cluster tier (tests/cluster).
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import fsmw

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


def stopped_store(path: Path) -> Path:
    """A store whose run has ended (STOP written): a worker given it exits 0 at once."""
    with fsmw.Executor(path):
        pass
    assert (path / "STOP").exists()
    return path


def recorder(tmp_path: Path) -> Path:
    """A stand-in program that writes its arguments, one a line, to ``<itself>.args``."""
    fake = tmp_path / "bin" / "recorder"
    fake.parent.mkdir(exist_ok=True)
    fake.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$@\" > {fake}.args\n")
    fake.chmod(0o755)
    return fake


def test_fsmw_worker_sub_takes_store_and_workers_from_the_command_line(htcondor, monkeypatch):
    text = (ROOT / "examples" / "fsmw_worker.sub").read_text()
    assert len(re.findall(r"^\s*queue\b", text, re.M | re.I)) == 1, "one queue statement only"
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("PYTHONPATH", "/shared/code")
    monkeypatch.setenv("FSMW_KEY", "s" * 64)
    # `condor_submit fsmw_worker.sub store=/shared/st workers=2` reads store=... and
    # workers=... as if they were the file's first lines: the file must not set them again.
    ads = list(htcondor.Submit("store=/shared/st\nworkers=2\n" + text).jobs(count=0))
    assert len(ads) == 2
    for number, ad in enumerate(ads):
        assert ad["JobUniverse"] == 5 and os.access(ad["Cmd"], os.X_OK)
        assert shlex.split(ad["Args"]) == ["python3", "-m", "fsmw", "worker", "/shared/st",
                                           f"--worker_id={number}", "--worker_idle_sleep_secs=2"]
        assert "PYTHONPATH=/shared/code" in ad["Environment"], "getenv passes PYTHONPATH"
        assert "FSMW_KEY" not in ad["Environment"], "a key in a job ad is readable by others"
    assert len({ad["Out"] for ad in ads}) == len({ad["Err"] for ad in ads}) == 2  # one log per job
    defaults = list(htcondor.Submit(text).jobs(count=0))
    assert [shlex.split(ad["Args"])[4] for ad in defaults] == ["store"] * 3


def test_fsmw_worker_sub_arguments_run_a_worker(htcondor, monkeypatch, tmp_path):
    """The job's command line, run here on a finished store: accepted, and exits 0 (STOPPED)."""
    store = stopped_store(tmp_path / "s")
    monkeypatch.chdir(ROOT)
    text = f"store={store}\nworkers=1\n" + (ROOT / "examples" / "fsmw_worker.sub").read_text()
    ad = next(iter(htcondor.Submit(text).jobs(count=0)))
    argv = shlex.split(ad["Args"])
    assert argv[0] == "python3"
    done = subprocess.run([sys.executable] + argv[1:], capture_output=True, text=True, cwd=tmp_path,
                          timeout=30)
    assert done.returncode == fsmw.ExitCode.STOPPED, done.stderr
    assert "stop file found" in done.stderr


def test_fsmw_worker_slurm_script_runs_one_worker_per_array_task(tmp_path):
    script = ROOT / "examples" / "fsmw_worker_slurm.sh"
    lines = script.read_text().splitlines()
    assert lines[0] == "#!/bin/sh"
    body = next(i for i, line in enumerate(lines[1:], 1) if line.strip() and not line.startswith("#"))
    directives = [line for line in lines if line.startswith("#SBATCH")]
    assert all(lines.index(d) < body for d in directives), "sbatch stops reading #SBATCH at a command"
    assert "#SBATCH --output=fsmw-worker-%A_%a.out" in directives
    assert not any("--array" in d for d in directives), "the array size is the submitter's"
    fake = recorder(tmp_path)
    env = dict(os.environ, PYTHON=str(fake), SLURM_ARRAY_TASK_ID="3")
    done = subprocess.run(["sh", str(script), "/shared/st", "--lease_secs=30"], capture_output=True,
                          text=True, cwd=tmp_path, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert Path(f"{fake}.args").read_text().splitlines() == [
        "-m", "fsmw", "worker", "/shared/st", "--worker_id=3", "--lease_secs=30"]
    usage = subprocess.run(["sh", str(script)], capture_output=True, text=True, env=env, timeout=60)
    assert usage.returncode != 0 and "usage: sbatch --array=1-N" in usage.stderr


def test_fsmw_worker_slurm_script_execs_the_worker(tmp_path):
    """The script execs the worker: it exits 0 at STOP, and --signal=B:USR1 (sent to the batch
    shell) reaches the worker itself, which gives its work back and exits 4 (INTERRUPTED)."""
    script = ROOT / "examples" / "fsmw_worker_slurm.sh"
    env = dict(os.environ, PYTHON=sys.executable, SLURM_ARRAY_TASK_ID="2")
    done = subprocess.run(["sh", str(script), str(stopped_store(tmp_path / "s")), "--lease_secs=30"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == fsmw.ExitCode.STOPPED, done.stderr
    assert "worker 2@" in done.stderr
    waiting = subprocess.Popen(["sh", str(script), str(tmp_path / "not-yet"), "--worker_idle_sleep_secs=0.2"],
                               stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert "waiting for the master" in waiting.stderr.readline()
        waiting.send_signal(signal.SIGUSR1)
        assert waiting.wait(timeout=30) == fsmw.ExitCode.INTERRUPTED
    finally:
        if waiting.poll() is None:
            waiting.kill()
            waiting.wait()
        waiting.stderr.close()
