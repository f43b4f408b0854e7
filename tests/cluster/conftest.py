"""Fixtures of the cluster tier: one GlusterFS lab per session, one directory per test.

The tier needs root (namespaces, mounts) and /dev/fuse.  Where it cannot run it
skips with the reason; with ``FSMW_REQUIRE_CLUSTER=1`` (set by ``.ci/run``) a
skip is an error instead, so CI can never pass by skipping.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from tools.lab.gluster import Lab
from tools.lab.condor import Condor
from tools.lab.slurm import Slurm

NODES = ["master", "n1", "n2", "ahead", "behind"]
SKEW = {"ahead": "+600", "behind": "-600"}
LAB_DIR = Path(os.environ.get("FSMW_LAB_DIR", "/var/tmp/fsmw-lab"))
_timings = {}
_figures = []


def why_not_runnable():
    if os.geteuid() != 0:
        return "the cluster tier needs root (network namespaces and FUSE mounts)"
    if not os.path.exists("/dev/fuse"):
        return "the cluster tier needs /dev/fuse"
    for tool in ("glusterd", "glusterfs", "gluster", "ip", "nsenter", "unshare"):
        if shutil.which(tool) is None:
            return (f"the cluster tier needs {tool} "
                    "(apt-get install glusterfs-server glusterfs-client iproute2)")
    return None


def skip_or_fail(reason: str):
    if os.environ.get("FSMW_REQUIRE_CLUSTER") == "1":
        pytest.fail(f"cluster tier cannot run: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def lab_runnable():
    reason = why_not_runnable()
    if reason:
        skip_or_fail(reason)


@pytest.fixture(scope="session")
def lab(lab_runnable):
    started = time.monotonic()
    the_lab = Lab(LAB_DIR)
    try:
        the_lab.up(NODES)
        for name, offset in SKEW.items():
            node = the_lab.nodes[name]
            the_lab.unmount(node)
            the_lab.mount(node, skew=offset)
        _timings["bring-up"] = time.monotonic() - started
        yield the_lab
    finally:
        started = time.monotonic()
        the_lab.down()
        _timings["tear-down"] = time.monotonic() - started


@pytest.fixture(scope="module")
def slurm(lab_runnable):
    """A Slurm cluster (slurmctld, slurmd, munged) for one test module."""
    for tool in ("slurmctld", "slurmd", "munged", "sbatch"):
        if shutil.which(tool) is None:
            skip_or_fail(f"{tool} is missing (apt-get install --no-install-recommends slurm-wlm munge)")
    cluster = Slurm(LAB_DIR / "slurm")
    try:
        cluster.up()
        yield cluster
    finally:
        cluster.down()


@pytest.fixture(scope="module")
def condor(lab_runnable):
    """An HTCondor pool in its chroot for one test module."""
    if shutil.which("debootstrap") is None:
        skip_or_fail("the HTCondor tier needs debootstrap (apt-get install debootstrap)")
    pool = Condor()
    try:
        pool.up()
        yield pool
    finally:
        pool.down()


@pytest.fixture
def nodes(lab):
    """The lab's nodes, each mounted and reachable again before the test."""
    for name, node in lab.nodes.items():
        lab.heal(node)
        if not os.path.ismount(node.mount):
            lab.mount(node, skew=SKEW.get(name))
    return lab.nodes


class OnNode:
    """``procs.on(node).worker(...)``: start the test programs on a lab node."""

    def __init__(self, procs, node) -> None:
        self._procs = procs
        self._node = node

    def _wrapped(self, method, *args, **kwargs):
        procs, node = self._procs, self._node
        plain = type(procs).start

        def start(name, argv, env=None, result=None):
            return plain(procs, name, node.cmd(argv), env, result)

        procs.start = start
        try:
            return method(*args, **kwargs)
        finally:
            del procs.start

    def master(self, *args, **kwargs):
        return self._wrapped(self._procs.master, *args, **kwargs)

    def worker(self, *args, **kwargs):
        return self._wrapped(self._procs.worker, *args, **kwargs)


@pytest.fixture
def procs(procs):
    """The fast tier's ``procs``, plus ``procs.on(node)``."""
    procs.on = lambda node: OnNode(procs, node)
    return procs


@pytest.fixture
def store_name(request):
    return f"{request.node.name}-{os.getpid()}-{time.monotonic_ns()}"


@pytest.fixture
def record(request):
    """Record a scenario's measured figures for the tier's closing table."""
    def record_figures(scenario: str, **figures: object) -> None:
        _figures.append(dict(scenario=scenario, test=request.node.name, **figures))
    return record_figures


def pytest_terminal_summary(terminalreporter):
    if _timings:
        parts = ", ".join(f"{k} {v:.1f} s" for k, v in _timings.items())
        terminalreporter.write_line(f"cluster lab: {parts}")
    for row in _figures:
        figures = ", ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}"
                            for k, v in row.items() if k not in ("scenario", "test"))
        terminalreporter.write_line(f"  {row['scenario']}: {figures}")
    if _figures:
        out = Path(os.environ.get("FSMW_CLUSTER_FIGURES", LAB_DIR / "figures.json"))
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(_figures, indent=1))
        terminalreporter.write_line(f"figures written to {out}")
