"""A GlusterFS "cluster" on one machine: a server and client nodes in namespaces.

Every node is a network namespace ``fsmw-<node>`` with its own address on the
bridge ``fsmwbr0`` (10.77.0.1 is the server) and its own FUSE mount of one
volume, made by a client daemon started inside that namespace; processes run
"on" a node get that namespace and their own hostname (UTS namespace).  What
the tests do to a node is what happens to a cluster node: its client daemon is
killed, its link goes down (a partition), or its clock is wrong (the client
daemon under libfaketime stamps every file with a skewed time).

Everything is started with setsid, stdin from /dev/null and output to log
files, and stopped by recorded PID; :meth:`Lab.down` also removes leftovers of
an earlier run that crashed, so a failed test never poisons the next one.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Dict, List, Optional

BRIDGE = "fsmwbr0"
SERVER_IP = "10.77.0.1"
VOLUME = "fsmwvol"
PREFIX = "fsmw-"


def sh(*argv: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(argv, check=check, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, **kw)


def wait_for(condition, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def kill_pid(pid: Optional[int], sig: int = signal.SIGTERM, timeout: float = 10) -> None:
    if not pid or not pid_alive(pid):
        return
    os.kill(pid, sig)
    try:
        wait_for(lambda: not pid_alive(pid) or _zombie(pid), timeout, f"pid {pid} to exit")
    except TimeoutError:
        os.kill(pid, signal.SIGKILL)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    except (OSError, IndexError):
        return True


def read_pid(path: Path) -> Optional[int]:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def faketime_lib() -> str:
    """The libfaketime build PyPI's package vendors (Debian's breaks Python's sleep)."""
    import libfaketime

    return str(Path(libfaketime.__file__).parent / "vendor" / "libfaketime" / "src" / "libfaketime.so.1")


def skew_env(offset: str, fake_utime: bool = False) -> Dict[str, str]:
    env = {"LD_PRELOAD": faketime_lib(), "FAKETIME": offset,
           "FAKETIME_DONT_FAKE_MONOTONIC": "1", "FAKETIME_NO_CACHE": "1"}
    if fake_utime:
        env["FAKE_UTIME"] = "1"
    return env


class Node:
    def __init__(self, lab: "Lab", name: str, index: int) -> None:
        self.lab = lab
        self.name = name
        self.netns = PREFIX + name
        self.ip = f"10.77.0.{10 + index}"
        self.host_veth = f"{PREFIX}{name}-h"[:15]
        self.mount = lab.base / "mnt" / name
        self.pidfile = lab.base / f"client-{name}.pid"
        self.skew: Optional[str] = None

    def client_pid(self) -> Optional[int]:
        return read_pid(self.pidfile)

    def cmd(self, argv: List[str]) -> List[str]:
        """Wrap argv to run in this node's network namespace with its own hostname."""
        inner = f'hostname {self.name} && exec "$@"'
        return ["nsenter", f"--net=/run/netns/{self.netns}", "unshare", "--uts",
                "sh", "-c", inner, "node"] + argv


class Lab:
    """Bring-up and tear-down of the server, the nodes and their mounts."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.nodes: Dict[str, Node] = {}
        self.glusterd_pid = base / "glusterd.pid"
        self.sock = base / "run" / "glusterd.socket"

    # -- bring-up -----------------------------------------------------------
    def up(self, node_names: List[str]) -> None:
        self.down()
        for sub in ("work", "run", "log", "brick", "mnt"):
            (self.base / sub).mkdir(parents=True, exist_ok=True)
        sh("ip", "link", "add", BRIDGE, "type", "bridge")
        sh("ip", "addr", "add", f"{SERVER_IP}/24", "dev", BRIDGE)
        sh("ip", "link", "set", BRIDGE, "up")
        for index, name in enumerate(node_names, start=1):
            self._add_node(name, index)
        self._start_glusterd()
        self._create_volume()
        for node in self.nodes.values():
            self.mount(node)

    def _add_node(self, name: str, index: int) -> None:
        node = Node(self, name, index)
        inner = f"{PREFIX}{name}-c"[:15]
        sh("ip", "netns", "add", node.netns)
        sh("ip", "link", "add", node.host_veth, "type", "veth", "peer", "name", inner)
        sh("ip", "link", "set", node.host_veth, "master", BRIDGE, "up")
        sh("ip", "link", "set", inner, "netns", node.netns)
        sh("ip", "-n", node.netns, "addr", "add", f"{node.ip}/24", "dev", inner)
        sh("ip", "-n", node.netns, "link", "set", inner, "up")
        sh("ip", "-n", node.netns, "link", "set", "lo", "up")
        self.nodes[name] = node

    def _start_glusterd(self) -> None:
        vol = self.base / "glusterd.vol"
        vol.write_text(f"""volume management
    type mgmt/glusterd
    option working-directory {self.base}/work
    option run-directory {self.base}/run
    option logging-directory {self.base}/log
    option glusterd-sockfile {self.sock}
    option transport-type socket
    option transport.socket.bind-address {SERVER_IP}
    option transport.socket.listen-port 24007
    option ping-timeout 0
    option event-threads 1
end-volume
""")
        subprocess.Popen(["glusterd", "-f", str(vol), "-p", str(self.glusterd_pid),
                          "-l", str(self.base / "log" / "glusterd.log")],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True).wait()
        wait_for(self.sock.exists, 20, "glusterd's socket")

    def gluster(self, *args: str) -> str:
        return sh("gluster", f"--glusterd-sock={self.sock}", "--mode=script", *args).stdout

    def _create_volume(self) -> None:
        self.gluster("volume", "create", VOLUME, f"{SERVER_IP}:{self.base}/brick", "force")
        # Fast failure detection, so a partitioned node's locks and connections go
        # in seconds (set before start: a live change misses open connections).
        for key, value in (("network.ping-timeout", "5"), ("server.tcp-user-timeout", "5"),
                           ("server.keepalive-time", "2"), ("server.keepalive-interval", "1"),
                           ("server.keepalive-count", "3")):
            self.gluster("volume", "set", VOLUME, key, value)
        self.gluster("volume", "start", VOLUME)

    def mount(self, node: Node, skew: Optional[str] = None) -> None:
        """Mount the volume on ``node`` (its client daemon skewed by ``skew``)."""
        _clear_mountpoint(node.mount)
        node.mount.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        if skew:
            env.update(skew_env(skew))
        node.skew = skew
        argv = ["nsenter", f"--net=/run/netns/{node.netns}", "glusterfs",
                f"--volfile-server={SERVER_IP}", f"--volfile-id={VOLUME}", "-p", str(node.pidfile),
                "-l", str(self.base / "log" / f"client-{node.name}.log"), str(node.mount)]
        subprocess.run(argv, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, env=env, start_new_session=True)
        wait_for(lambda: os.path.ismount(node.mount), 20, f"mount on {node.name}")

    def unmount(self, node: Node) -> None:
        pid = node.client_pid()
        if os.path.ismount(node.mount):
            sh("umount", "-l", str(node.mount), check=False)
        kill_pid(pid)

    # -- failures -----------------------------------------------------------
    def kill_client(self, node: Node) -> None:
        """The node's file-system client dies (its mount stops answering)."""
        kill_pid(node.client_pid(), signal.SIGKILL)

    def partition(self, node: Node) -> None:
        sh("ip", "link", "set", node.host_veth, "down")

    def heal(self, node: Node) -> None:
        sh("ip", "link", "set", node.host_veth, "up")

    # -- tear-down ----------------------------------------------------------
    def down(self) -> None:
        """Remove everything this lab (or a crashed earlier one) set up."""
        for mnt in _fsmw_mounts(self.base):
            sh("umount", "-l", mnt, check=False)
        for pidfile in self.base.glob("client-*.pid"):
            kill_pid(read_pid(pidfile), signal.SIGKILL)
        if self.sock.exists() and pid_alive(read_pid(self.glusterd_pid) or 0):
            sh("gluster", f"--glusterd-sock={self.sock}", "--mode=script", "volume", "stop",
               VOLUME, "force", check=False, timeout=60)
        for pidfile in self.base.glob("run/**/*.pid"):
            kill_pid(read_pid(pidfile), signal.SIGKILL)
        kill_pid(read_pid(self.glusterd_pid))
        for line in sh("ip", "netns", "list").stdout.splitlines():
            name = line.split()[0] if line.split() else ""
            if name.startswith(PREFIX):
                sh("ip", "netns", "delete", name, check=False)
        sh("ip", "link", "delete", BRIDGE, check=False)
        for name in _fsmw_links():  # a namespace the kernel frees late keeps its veth pair
            sh("ip", "link", "delete", name, check=False)
        for sub in ("work", "run", "brick", "mnt"):
            shutil.rmtree(self.base / sub, ignore_errors=True)
        self.nodes.clear()


def _clear_mountpoint(path: Path) -> None:
    """Detach a dead FUSE mount (its daemon was killed) so the path can be reused."""
    for _ in range(50):
        try:
            os.stat(path)
            if not os.path.ismount(path):
                return
        except FileNotFoundError:
            return
        except OSError:
            pass  # ENOTCONN: a mount whose daemon is gone
        sh("umount", "-l", str(path), check=False)
        time.sleep(0.1)
    raise RuntimeError(f"cannot clear mount point {path}")


def _fsmw_links() -> List[str]:
    """Links named like the nodes' host ends (``fsmw-<node>-h``) in this namespace."""
    names = []
    for line in sh("ip", "-o", "link", "show", check=False).stdout.splitlines():
        fields = line.split(": ")
        name = fields[1].split("@")[0] if len(fields) > 1 else ""
        if name.startswith(PREFIX):
            names.append(name)
    return names


def _fsmw_mounts(base: Path) -> List[str]:
    found = []
    with open("/proc/mounts") as mounts:
        for line in mounts:
            fields = line.split()
            if len(fields) > 2 and fields[1].startswith(str(base)):
                found.append(fields[1])
    return sorted(found, reverse=True)
