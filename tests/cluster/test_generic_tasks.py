"""Generic tasks across real nodes and schedulers: ``fsmw.Executor``, ``fsmw worker``, ``fsmw run``.

* GlusterFS: an Executor (in this process) on node ``master``'s mount maps a
  function over calls that ``fsmw worker`` processes on nodes ``n1`` and ``n2``
  run, each through its own mount, under its own hostname.
* Slurm: a job array of ``fsmw worker`` submitted with
  ``examples/fsmw_worker_slurm.sh`` serves an ``fsmw run`` started here.
* HTCondor: ``condor_submit examples/fsmw_worker.sub store=... workers=2``
  serves an ``fsmw run`` started by the same user in the pool's chroot.

Workers import the Executor's functions from ``support.calls``: their
PYTHONPATH holds the project and ``tests/``, as a user's shared code path would.
"""

from __future__ import annotations

import re
import shutil
import sys
import time
from pathlib import Path

import pytest

import fsmw
from support import calls
from support.procs import wait_for
from tools.lab import condor as condor_lab

ROOT = Path(__file__).resolve().parents[2]
CODE_PATH = f"{ROOT}:{ROOT / 'tests'}"  # the project and support.calls
LEASE = 4.0
LINES = [f"item {i:02d}" for i in range(1, 13)]
EXPECTED = "".join(f"out-{line}\n" for line in LINES)  # in input order
COMMAND = ["sh", "-c", "echo out-$1", "sh", "{}"]


def worker_argv(store, worker_id: int):
    return [sys.executable, "-m", "fsmw", "worker", str(store), f"--worker_id={worker_id}",
            f"--lease_secs={LEASE}", "--fsync", "--worker_idle_sleep_secs=0.2",
            "--worker_max_idle_secs=120"]


def tasks_done(logs) -> int:
    """Tasks the workers say they ran, from each one's closing 'stop file found after N tasks'."""
    counts = [re.findall(r"stop file found after (\d+) tasks", log) for log in logs]
    assert all(len(c) == 1 for c in counts), logs
    return sum(int(c[0]) for c in counts)


def split_stderr(err: Path, argv):
    """argv run with stderr to ``err`` (stdout stays with the Procs log)."""
    return ["sh", "-c", 'exec "$@" 2>"$0"', str(err)] + list(argv)


# -- GlusterFS: an Executor on one node, workers on two others ------------------
@pytest.mark.time_limit(150)
def test_executor_map_runs_on_workers_of_two_other_nodes(procs, nodes, store_name, record):
    store = {name: node.mount / store_name for name, node in nodes.items()}
    workers = [procs.start(f"worker{i}", nodes[n].cmd(worker_argv(store[n], i)),
                           env={"PYTHONPATH": CODE_PATH}) for i, n in ((1, "n1"), (2, "n2"))]
    for w in workers:  # both poll before the first call is written
        w.wait_log("waiting for the master to create store", 60)
    started = time.monotonic()
    with fsmw.Executor(store["master"], lease_secs=LEASE, fsync=True, master_idle_sleep_secs=0.2) as ex:
        got = list(ex.map(calls.where, range(40)))
    secs = time.monotonic() - started
    assert [x for x, _, _ in got] == list(range(40)), "every result, in order"
    hosts = {host for _, _, host in got}
    assert hosts == {"n1", "n2"}, f"calls ran on {hosts}"
    assert {pid for _, pid, _ in got} == {w.pid for w in workers}
    for w in workers:
        assert w.wait(60) == fsmw.ExitCode.STOPPED, w.tail()
    assert (store["n1"] / "STOP").exists()
    assert tasks_done([w.text() for w in workers]) >= 40
    record("Executor map, workers on 2 GlusterFS nodes", secs=secs, tasks=40,
           per_host=",".join(f"{h}:{sum(1 for r in got if r[2] == h)}" for h in sorted(hosts)))


# -- Slurm: a job array of fsmw worker serves fsmw run ---------------------------
@pytest.mark.time_limit(180)
def test_slurm_worker_array_serves_fsmw_run(slurm, procs, tmp_path, record):
    store, tasks, err = tmp_path / "store", tmp_path / "tasks.txt", tmp_path / "run.err"
    tasks.write_text("\n".join(LINES[:6] + [""] + LINES[6:]) + "\n")  # a blank line is no task
    started = time.monotonic()
    run = procs.start("fsmw-run", split_stderr(err, [
        sys.executable, "-m", "fsmw", "run", str(store), "--tasks", str(tasks),
        "--master_idle_sleep_secs=0.2", f"--lease_secs={LEASE}", "--"] + COMMAND))
    wait_for((store / "KEY").exists, 60, "fsmw run to make the store and its key")
    array = slurm.run("sbatch", "--parsable", "--array=1-2", str(ROOT / "examples" / "fsmw_worker_slurm.sh"),
                      str(store), "--worker_idle_sleep_secs=0.2", f"--lease_secs={LEASE}",
                      cwd=tmp_path, env=dict(slurm.env, PYTHON=sys.executable)).stdout.strip()
    assert run.wait(120) == 0, err.read_text() + run.tail()
    assert run.text() == EXPECTED
    assert "12 tasks: 12 done, 0 failed" in err.read_text()

    def ours():
        return [j for j in slurm.completions() if j.get("ArrayJobId") == array]

    wait_for(lambda: len(ours()) >= 2 and slurm.queue_empty(), 60, "the two array jobs to end",
             interval=0.2)
    secs = time.monotonic() - started
    states = sorted((j["ArrayTaskId"], j["Name"], j["JobState"], j["ExitCode"]) for j in ours())
    assert states == [(str(t), "fsmw-worker", "COMPLETED", "0:0") for t in (1, 2)], states
    logs = [(tmp_path / f"fsmw-worker-{array}_{task}.out").read_text() for task in (1, 2)]
    for task, log in zip((1, 2), logs):  # noqa: B905 (3.9 has no strict=)
        assert f"worker {task}@" in log, log
    assert tasks_done(logs) >= 12
    record("Slurm: fsmw run served by a 2-job fsmw worker array", secs=secs, tasks=12, jobs=2)


# -- HTCondor: condor_submit fsmw_worker.sub serves fsmw run ---------------------
@pytest.mark.time_limit(600)
def test_condor_workers_from_fsmw_worker_sub_serve_fsmw_run(condor, procs, record):
    run_dir = condor.new_run_dir("run-generic")
    outside = condor.outside(run_dir)
    shutil.copytree(ROOT / "fsmw", outside / "fsmw", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "examples", outside / "examples", ignore=shutil.ignore_patterns("__pycache__"))
    (outside / "tasks.txt").write_text("\n".join(LINES) + "\n")
    condor.chown(run_dir)
    env = dict(PYTHONPATH=f"{run_dir}:/opt/fsmw-deps")
    # The submitting user starts fsmw run (it owns the store and its private KEY), then the workers.
    command = " ".join(f"'{a}'" for a in COMMAND)
    inside = (f"cd {run_dir} && exec python3 -m fsmw run {run_dir}/shared-store --tasks tasks.txt "
              f"--master_idle_sleep_secs=0.5 -- {command} 2>run.err")
    started = time.monotonic()
    run = procs.start("fsmw-run", ["chroot", f"--userspec={condor_lab.USER}:{condor_lab.USER}",
                                   str(condor_lab.CHROOT)] + condor.env(**env) + ["sh", "-c", inside])
    wait_for((outside / "shared-store" / "KEY").exists, 60, "fsmw run to make the store and its key")
    submitted = condor.run_as_user(f"cd {run_dir} && condor_submit examples/fsmw_worker.sub "
                                   f"store={run_dir}/shared-store workers=2", **env)
    output = submitted.stdout + submitted.stderr
    assert submitted.returncode == 0, output
    assert "2 job(s) submitted" in output, output
    assert not re.search(r"deprecat|warning", output, re.I), output
    assert run.wait(300) == 0, (outside / "run.err").read_text() + run.tail()
    assert run.text() == EXPECTED
    assert "12 tasks: 12 done, 0 failed" in (outside / "run.err").read_text()
    waited = condor.run_as_user(f"cd {run_dir} && condor_wait -wait 120 fsmw-worker-condor.log", timeout=140)
    assert waited.returncode == 0, waited.stdout + waited.stderr
    secs = time.monotonic() - started
    log = (outside / "fsmw-worker-condor.log").read_text()
    codes = re.findall(r"Normal termination \(return value (\d+)\)", log)
    assert codes == ["0", "0"], log[-2000:]
    errs = sorted(outside.glob("fsmw-worker-*.err"))
    assert len(errs) == 2
    assert tasks_done([p.read_text() for p in errs]) >= 12
    record("HTCondor: fsmw run served by fsmw_worker.sub (2 workers)", secs=secs, tasks=12, jobs=2)
