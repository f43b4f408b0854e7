"""Who is writing: host, process, worker id and batch-scheduler job id.

These facts go into temp-file names (so two writers never collide, even after
a crash and a restart with the same pid on another host) and into claim and
error records (so ``cat`` on a claim shows who works on what).  They are
worked out once per process and object, never per log line or per task.
"""

from __future__ import annotations

import re
from typing import Dict, Mapping, Optional

from . import layout
from .atomic import read_small
from .system import REAL_FS, FileSystem


def host_name(fs: FileSystem = REAL_FS) -> str:
    """This host's short name, as the scheduler and ``ls`` show it."""
    return fs.hostname().split(".")[0] or "localhost"


def safe_host(fs: FileSystem = REAL_FS) -> str:
    """The host name reduced to characters safe in a file name (<= 32)."""
    return layout.safe_host(host_name(fs))


def job_id(environ: Mapping[str, str], fs: FileSystem = REAL_FS) -> Optional[str]:
    """The Slurm or HTCondor job id of this process, or ``None``.

    Slurm array tasks are named ``slurm:<array job>_<task>``, other Slurm jobs
    ``slurm:<job>``.  HTCondor jobs are ``condor:<cluster>.<proc>``, read from
    the job ad file HTCondor names in ``_CONDOR_JOB_AD``.
    """
    env = environ
    if env.get("SLURM_ARRAY_JOB_ID") and env.get("SLURM_ARRAY_TASK_ID"):
        return f"slurm:{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"
    if env.get("SLURM_JOB_ID"):
        return f"slurm:{env['SLURM_JOB_ID']}"
    ad_path = env.get("_CONDOR_JOB_AD")
    if ad_path:
        return _condor_id(fs, ad_path)
    return None


def _condor_id(fs: FileSystem, ad_path: str) -> str:
    data = read_small(ad_path, limit=1 << 20, fs=fs, missing_ok=False) if ad_path else None
    text = (data or b"").decode("utf-8", errors="replace")
    found = dict(re.findall(r"^(ClusterId|ProcId)\s*=\s*(\d+)\s*$", text, re.M))
    if "ClusterId" in found:
        return f"condor:{found['ClusterId']}.{found.get('ProcId', '0')}"
    return "condor:?"


def owner_facts(role: str, worker_id: Optional[int], environ: Mapping[str, str],
                fs: FileSystem = REAL_FS) -> Dict[str, object]:
    """The facts that identify this process in claims and records."""
    return {
        "role": role,
        "host": host_name(fs),
        "pid": fs.getpid(),
        "worker_id": worker_id,
        "job_id": job_id(environ, fs),
    }
