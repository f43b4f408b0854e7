"""A personal HTCondor pool in a Debian 13 chroot, run as an ordinary user.

Debian 12 has no HTCondor and PyPI ships no daemons, so the pool runs from
Debian 13's ``condor`` package in a ``debootstrap --variant=minbase trixie``
chroot (built once, ~35 s, and kept under /var/cache/fsmw).  HTCondor refuses
jobs from root, so ``condor_master`` and ``condor_submit`` run as the chroot's
user ``fsmwuser``.  The pool is personal: one machine, 127.0.0.1, FS
authentication, four CPUs, two-second cycles, everything under the user's
home.  Jobs see the chroot's python3 with python-gflags and six in
/opt/fsmw-deps, passed through PYTHONPATH by ``getenv = true``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import List

from .gluster import kill_pid, sh, wait_for

CHROOT = Path(os.environ.get("FSMW_CONDOR_CHROOT", "/var/cache/fsmw/trixie-condor"))
MIRROR = "http://deb.debian.org/debian"
USER = "fsmwuser"
HOME = Path("/home") / USER
CONFIG = """RELEASE_DIR = /usr
LOCAL_DIR = {home}/condor
RUN = $(LOCAL_DIR)/run
LOG = $(LOCAL_DIR)/log
LOCK = $(LOCAL_DIR)/lock
SPOOL = $(LOCAL_DIR)/spool
EXECUTE = $(LOCAL_DIR)/execute
CRED_STORE_DIR = $(LOCAL_DIR)/cred_dir
BIN = $(RELEASE_DIR)/bin
LIB = $(RELEASE_DIR)/lib/condor
SBIN = $(RELEASE_DIR)/sbin
LIBEXEC = $(RELEASE_DIR)/libexec/condor
SHARE = $(RELEASE_DIR)/share/condor
use ROLE : Personal
CONDOR_HOST = 127.0.0.1
NETWORK_INTERFACE = 127.0.0.1
SEC_DEFAULT_AUTHENTICATION_METHODS = FS
SEC_CLIENT_AUTHENTICATION_METHODS = FS
SEC_DEFAULT_AUTHENTICATION = OPTIONAL
SEC_READ_AUTHENTICATION = OPTIONAL
ALLOW_READ = *
ALLOW_WRITE = *
ALLOW_DAEMON = *
ALLOW_NEGOTIATOR = *
ALLOW_ADMINISTRATOR = *
ALLOW_OWNER = *
ALLOW_CONFIG = *
NUM_CPUS = 4
NEGOTIATOR_INTERVAL = 2
NEGOTIATOR_CYCLE_DELAY = 1
SCHEDD_INTERVAL = 2
UPDATE_INTERVAL = 2
STARTER_UPDATE_INTERVAL = 2
START = TRUE
SUSPEND = FALSE
PREEMPT = FALSE
KILL = FALSE
"""


def build_chroot() -> None:
    """Make the trixie chroot with condor and python3 unless a complete one exists."""
    ready = CHROOT / ".fsmw-ready"
    if ready.exists():
        return
    shutil.rmtree(CHROOT, ignore_errors=True)
    CHROOT.parent.mkdir(parents=True, exist_ok=True)
    sh("debootstrap", "--variant=minbase", "trixie", str(CHROOT), MIRROR, timeout=900)
    with _mounted(["proc"]):
        sh("chroot", str(CHROOT), "sh", "-c",
           "export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && "
           "apt-get install -y -qq --no-install-recommends condor python3", timeout=900)
    sh("chroot", str(CHROOT), "useradd", "-m", "-s", "/bin/sh", USER)
    sh("python3", "-m", "pip", "install", "-q", "--no-deps", "--target",
       str(CHROOT / "opt" / "fsmw-deps"), "python-gflags==3.1.2", "six", timeout=300)
    ready.touch()


class _mounted:
    def __init__(self, which: List[str]) -> None:
        self.which = which

    def __enter__(self) -> None:
        for name in self.which:
            target = CHROOT / name
            if not os.path.ismount(target):
                if name == "proc":
                    sh("mount", "-t", "proc", "proc", str(target))
                else:
                    sh("mount", "--bind", f"/{name}", str(target))

    def __exit__(self, *exc: object) -> None:
        for name in reversed(self.which):
            sh("umount", "-l", str(CHROOT / name), check=False)


class Condor:
    """The personal pool: :meth:`up`, :meth:`run_as_user`, :meth:`down`."""

    def __init__(self) -> None:
        self.mounts = _mounted(["proc", "dev"])
        self.master: subprocess.Popen | None = None

    def env(self, **extra: str) -> List[str]:
        pairs = dict(HOME=str(HOME), CONDOR_CONFIG=str(HOME / "condor_config"),
                     PATH="/usr/sbin:/usr/bin:/sbin:/bin", LANG="C.UTF-8", **extra)
        return ["env", "-i"] + [f"{k}={v}" for k, v in pairs.items()]

    def run_as_user(self, command: str, timeout: float = 120, **extra: str) -> subprocess.CompletedProcess:
        argv = ["chroot", f"--userspec={USER}:{USER}", str(CHROOT)] + self.env(**extra) + \
            ["sh", "-c", command]
        return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=timeout)

    def up(self) -> None:
        build_chroot()
        self.down()
        local = CHROOT / HOME.relative_to("/") / "condor"
        shutil.rmtree(local, ignore_errors=True)
        for sub in ("run", "log", "lock", "spool", "execute", "cred_dir"):
            (local / sub).mkdir(parents=True)
        (CHROOT / HOME.relative_to("/") / "condor_config").write_text(CONFIG.format(home=HOME))
        sh("chroot", str(CHROOT), "chown", "-R", f"{USER}:{USER}", str(HOME))
        self.mounts.__enter__()
        argv = ["chroot", f"--userspec={USER}:{USER}", str(CHROOT)] + self.env() + \
            ["condor_master", "-f"]
        with open(local / "master.out", "wb") as out:
            self.master = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                           start_new_session=True)
        wait_for(lambda: self.run_as_user("condor_status -af Name").stdout.strip(), 60,
                 "the HTCondor pool to show a slot", interval=0.5)

    def new_run_dir(self, name: str) -> Path:
        """A fresh directory in the user's home (path inside the chroot)."""
        inside = HOME / name
        outside = CHROOT / inside.relative_to("/")
        shutil.rmtree(outside, ignore_errors=True)
        outside.mkdir(parents=True)
        return inside

    def outside(self, inside: Path) -> Path:
        return CHROOT / inside.relative_to("/")

    def chown(self, inside: Path) -> None:
        sh("chroot", str(CHROOT), "chown", "-R", f"{USER}:{USER}", str(inside))

    def down(self) -> None:
        """Stop the pool and every process left in the chroot, then unmount."""
        if self.master is not None:
            kill_pid(self.master.pid, signal.SIGTERM, timeout=20)
            self.master.wait(timeout=30)
            self.master = None
        for pid in _processes_in_chroot():
            kill_pid(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while _processes_in_chroot() and time.monotonic() < deadline:
            time.sleep(0.1)
        self.mounts.__exit__(None, None, None)


def _processes_in_chroot() -> List[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.readlink(entry / "root") == str(CHROOT):
                    found.append(int(entry.name))
            except OSError:
                pass
    return found
