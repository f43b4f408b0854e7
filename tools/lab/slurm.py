"""A single-node Slurm cluster (munged, slurmctld, slurmd) started for the tests.

The configuration lives in the lab directory and is found through SLURM_CONF,
so nothing under /etc/slurm is touched.  Settings that matter on this 2-core
machine: the node advertises 4 CPUs and the partition oversubscribes, so one
master and three workers run at once; cores are allocated without memory
(``CR_Core``) because the node reports 1 MB; ``MinJobAge`` is short and
``batch_sched_delay=0`` so jobs start and leave the queue quickly; exit codes
are read from the filetxt job-completion log (no slurmdbd).
"""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path
from typing import Dict, List

from .gluster import kill_pid, read_pid, sh, wait_for

CONF = """ClusterName=fsmwlab
SlurmctldHost={host}
SlurmUser=root
SlurmctldPort=6917
SlurmdPort=6918
AuthType=auth/munge
StateSaveLocation={base}/state
SlurmdSpoolDir={base}/spool
SlurmctldPidFile={base}/slurmctld.pid
SlurmdPidFile={base}/slurmd.pid
SlurmctldLogFile={base}/slurmctld.log
SlurmdLogFile={base}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0
JobCompType=jobcomp/filetxt
JobCompLoc={base}/jobcomp.txt
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
MinJobAge=4
MailProg=/bin/true
ReturnToService=2
SlurmdParameters=config_overrides
NodeName={host} NodeAddr=127.0.0.1 CPUs=4 State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
"""


class Slurm:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.env = dict(os.environ, SLURM_CONF=str(base / "slurm.conf"))
        self.munge_pid = Path("/run/munge/munged.pid")

    def up(self) -> None:
        self.down()
        for sub in ("state", "spool"):
            (self.base / sub).mkdir(parents=True, exist_ok=True)
        (self.base / "jobcomp.txt").unlink(missing_ok=True)
        host = socket.gethostname().split(".")[0]
        (self.base / "slurm.conf").write_text(CONF.format(host=host, base=self.base))
        Path("/run/munge").mkdir(exist_ok=True)
        sh("chown", "munge:munge", "/run/munge")
        if not read_pid(self.munge_pid):
            sh("runuser", "-u", "munge", "--", "munged")
        for daemon in ("slurmctld", "slurmd"):
            with open(self.base / f"{daemon}.out", "wb") as out:
                subprocess.Popen([daemon, "-D"], stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                 env=self.env, start_new_session=True)
        wait_for(lambda: "idle" in self.run("sinfo", "-h", "-o", "%T", check=False).stdout, 30,
                 "the Slurm node to be idle", interval=0.1)

    def run(self, *argv: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
        kw.setdefault("env", self.env)
        return sh(*argv, check=check, **kw)

    def queue_empty(self) -> bool:
        return self.run("squeue", "-h", check=False).stdout.strip() == ""

    def completions(self) -> List[Dict[str, str]]:
        """One dict per finished job (JobId, JobState, ExitCode...) from jobcomp."""
        path = self.base / "jobcomp.txt"
        rows = []
        for line in path.read_text().splitlines() if path.exists() else []:
            rows.append(dict(f.split("=", 1) for f in line.split() if "=" in f))
        return rows

    def down(self) -> None:
        conf = self.base / "slurm.conf"
        if conf.exists() and read_pid(self.base / "slurmctld.pid"):
            self.run("scancel", "--user=root", check=False, timeout=30)
            try:
                wait_for(self.queue_empty, 30, "the Slurm queue to empty", interval=0.2)
            except TimeoutError:
                pass
        for daemon in ("slurmd", "slurmctld"):
            kill_pid(read_pid(self.base / f"{daemon}.pid"))
        kill_pid(read_pid(self.munge_pid))
