"""Who is writing: host, process, worker id and batch-scheduler job id.

These facts go into temp-file names (so two writers never collide, even after
a crash and a restart with the same pid on another host) and into claim and
error records (so ``cat`` on a claim shows who works on what).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
from typing import Callable, Dict, Mapping, Optional

_SAFE = re.compile(r"[^A-Za-z0-9_-]+")


def host_name() -> str:
    """This host's short name, as the scheduler and ``ls`` show it."""
    return socket.gethostname().split(".")[0] or "localhost"


def safe_host() -> str:
    """The host name reduced to characters safe in a file name (<= 32)."""
    return _SAFE.sub("_", host_name())[:32] or "host"


def job_id(environ: Optional[Mapping[str, str]] = None) -> Optional[str]:
    """The Slurm or HTCondor job id of this process, or ``None``.

    Slurm array tasks are named ``slurm:<array job>_<task>``, other Slurm jobs
    ``slurm:<job>``.  HTCondor jobs are ``condor:<cluster>.<proc>``, read from
    the job ad file HTCondor names in ``_CONDOR_JOB_AD``.
    """
    env = os.environ if environ is None else environ
    if env.get("SLURM_ARRAY_JOB_ID") and env.get("SLURM_ARRAY_TASK_ID"):
        return f"slurm:{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"
    if env.get("SLURM_JOB_ID"):
        return f"slurm:{env['SLURM_JOB_ID']}"
    ad_path = env.get("_CONDOR_JOB_AD")
    if ad_path:
        return _condor_id(ad_path)
    return None


def slurm_time_left(environ: Optional[Mapping[str, str]] = None) -> Optional[float]:
    """Seconds left in this Slurm job's time limit (asks squeue once), or None."""
    env = os.environ if environ is None else environ
    job = env.get("SLURM_JOB_ID")
    if not job:
        return None
    try:
        done = subprocess.run(["squeue", "-h", "-j", job, "-o", "%L"], capture_output=True,
                              text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return parse_slurm_duration(done.stdout.strip()) if done.returncode == 0 else None


def parse_slurm_duration(text: str) -> Optional[float]:
    """``[D-]HH:MM:SS``, ``MM:SS`` or ``SS`` in seconds; None for UNLIMITED and the like."""
    days, _, clock = text.rpartition("-")
    parts = clock.split(":")
    if not all(p.isdigit() for p in parts) or not 1 <= len(parts) <= 3 or \
            (days and not days.isdigit()):
        return None
    secs = 0
    for part in parts:
        secs = secs * 60 + int(part)
    return secs + int(days or 0) * 86400.0


def _condor_id(ad_path: str) -> Optional[str]:
    try:
        with open(ad_path, encoding="utf-8", errors="replace") as ad:
            text = ad.read()
    except OSError:
        return "condor:?"
    found = dict(re.findall(r"^(ClusterId|ProcId)\s*=\s*(\d+)\s*$", text, re.M))
    if "ClusterId" in found:
        return f"condor:{found['ClusterId']}.{found.get('ProcId', '0')}"
    return "condor:?"


def owner_facts(role: str, worker_id: Optional[int]) -> Dict[str, object]:
    """The facts that identify this process in claims and records."""
    return {
        "role": role,
        "host": host_name(),
        "pid": os.getpid(),
        "worker_id": worker_id,
        "job_id": job_id(),
    }


def format_record(facts: Mapping[str, object], body: str = "") -> bytes:
    """Render ``key: value`` lines, then an optional free-text body.

    The format is meant for ``cat``; :func:`parse_record` reads it back.
    """
    lines = [f"{key}: {value}" for key, value in facts.items()]
    text = "\n".join(lines) + "\n"
    if body:
        text += "\n" + body.rstrip("\n") + "\n"
    return text.encode("utf-8", errors="replace")


def parse_record(data: bytes) -> Dict[str, str]:
    """Read the ``key: value`` header of a record; the body is under ``""``."""
    text = data.decode("utf-8", errors="replace")
    head, _, body = text.partition("\n\n")
    facts: Dict[str, str] = {}
    for line in head.splitlines():
        key, sep, value = line.partition(": ")
        if sep:
            facts[key.strip()] = value.strip()
    facts[""] = body
    return facts


class Allocation:
    """A worker's allocation: ``walltime_secs``, else the Slurm job's time left, else unlimited."""

    def __init__(self, walltime_secs: Optional[float], clock: Callable[[], float]) -> None:
        self._clock = clock
        if walltime_secs is None:
            walltime_secs = slurm_time_left()
        self._deadline = None if walltime_secs is None else clock() + walltime_secs

    def time_left(self) -> Optional[float]:
        return None if self._deadline is None else self._deadline - self._clock()

    def too_short(self, typical_secs: Callable[[], Optional[float]]) -> bool:
        """True when the time left cannot be expected to fit one more task."""
        left = self.time_left()
        if left is None:
            return False
        typical = typical_secs()
        return left <= 0 or (typical is not None and left < typical)
