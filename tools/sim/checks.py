"""The properties checked at every change of the simulated file system, and at the end.

Safety, checked as each change happens (so the step that breaks a property
is the one the trace ends at):

* **published once**: each ``<task>.out`` name comes into being at most once
  per round directory, never by replacing a file, and is never removed;
* **never torn or changed**: its content, when it appears, is the complete,
  correct result of the task's input, and is never written again;
* **fencing**: an output is published only by the holder of a live claim on
  its task; a publish on a lost claim is ``fence-race`` if the holder's fence
  check (the ``stat`` just before its ``link``) was right when made,
  ``stale-fence-check`` if its NFS cache answered it wrongly, and
  ``lost-claim-publish`` if there was no check;
* **closed means closed**: no ``.out`` appears in a round once its ``CLOSED``
  exists (the round's attempts were fenced: a late result becomes ``.dup``);
* **live claims stay**: a claim is fenced (a name ``*.claim.<g>`` replaced by
  rename) only if its holder crashed or exited, or the round is closed, or its
  holder went silent: some gap between the changes of the claim's inode
  (heartbeats, and the holder's own writes and links), from the claim's
  creation to the break, was longer than ``lease - actimeo`` (a freeze, a
  heartbeat that stopped); a holder that heartbeats within the lease keeps it.

A master that stops as taken over must have been: its store claim no longer
its own (``false-takeover``, checked as it exits).

Liveness, at the end (:meth:`Checker.finish`): the run ended within its
bounds, the last master returned, every task of its last round is done or
failed, and every worker exited or crashed.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Optional, Set, Tuple

from fsmw._core import layout

PROPERTIES = ("published-twice", "torn", "overwritten", "closed-round", "lost-claim-publish",
              "stale-fence-check", "fence-race", "live-claim-broken", "abandoned-claim", "false-takeover",
              "not-ended", "escaped")
SLACK = 0.1  # seconds of scheduling slack allowed on the heartbeat gap


def result_of(data: bytes) -> bytes:
    """The correct output of an input (what the simulated workers compute)."""
    return b"result(" + bytes(data) + b")\n" + bytes(reversed(bytes(data)))


class Checker:
    """Watches the server's changes; the first broken property ends the schedule."""

    def __init__(self, world: Any, lease: float, actimeo: float, known: Iterable[str] = ()) -> None:
        self.world = world
        self.known = frozenset(known)
        self.known_hits: List[str] = []
        self.lease, self.actimeo = lease, actimeo
        self.violations: List[str] = []
        self._published: Dict[Tuple[str, str], int] = {}
        self._outputs: Set[int] = set()
        self._fence_records: Set[int] = set()  # renamed over a claim: breaking one again fences nobody
        self._named_at: Dict[Tuple[str, str], float] = {}
        self.stats: Dict[str, int] = {"published": 0, "fenced": 0, "fenced_dead": 0}

    def fail(self, prop: str, what: str) -> None:
        """Property ``prop`` broke: end the schedule, unless ``prop`` is a known bug (then note it)."""
        kernel = self.world.kernel
        if prop in self.known:
            self.known_hits.append(f"[{prop}] {what}")
            kernel.note("KNOWN", prop, what)
            return
        self.violations.append(f"[{prop}] {what}")
        kernel.note("VIOLATION", prop, what)
        if kernel.over is None:
            kernel.over = "violation: " + what

    # -- events from the file system ---------------------------------------------------
    def named(self, proc: Any, dir_path: str, name: str, inode: Any, replaced: Optional[Any]) -> None:
        """``name`` in ``dir_path`` now points at ``inode`` (it replaced ``replaced``)."""
        since = self._named_at.get((dir_path, name), 0.0)
        self._named_at[(dir_path, name)] = self.world.kernel.now
        if replaced is not None and replaced.ino in self._outputs:
            self.fail("overwritten", f"{proc.name} replaced published output "
                      f"{self._short(dir_path, name)} by rename")
        entry = layout.parse(name)
        if entry is None:
            return
        if entry.kind == layout.OUT:
            self._published_output(proc, dir_path, entry.task, inode)
        elif entry.kind == layout.CLAIM and replaced is not None:
            self._fence_records.add(inode.ino)  # a record of the break, held by nobody
            if replaced.ino not in self._fence_records:
                self._fenced(proc, dir_path, name, replaced, since)

    def unnamed(self, proc: Any, dir_path: str, name: str, inode: Any) -> None:
        if inode.ino in self._outputs and name.endswith("." + layout.OUT):
            self.fail("overwritten", f"{proc.name} removed published output {self._short(dir_path, name)}")

    def wrote(self, proc: Any, inode: Any) -> None:
        if inode.ino in self._outputs:
            self.fail("overwritten", f"{proc.name} wrote into a published output (inode {inode.ino})")

    # -- the properties -------------------------------------------------------------------
    def _published_output(self, proc: Any, dir_path: str, task: str, inode: Any) -> None:
        key = (dir_path, task)
        count = self._published[key] = self._published.get(key, 0) + 1
        self._outputs.add(inode.ino)
        self.stats["published"] += 1
        where = self._short(dir_path, task + ".out")
        if count > 1:
            self.fail("published-twice", f"{proc.name} published {where} a second time")
        if self.world.server.resolve(f"{_round_of(dir_path)}/{layout.CLOSED}") is not None:
            story = self._claim_story(proc, dir_path, task)
            self.fail("closed-round", f"{proc.name} published {where} in a closed round ({story}; "
                      f"closed means closed: a late result must become .dup)")
        story = self._claim_story(proc, dir_path, task)
        if story.endswith("lost claim"):
            self._lost_claim(proc, dir_path, task, where, story)
        source = self.world.server.resolve(f"{dir_path}/{task}.{layout.IN}")
        if source is None:
            self.fail("torn", f"{proc.name} published {where}, which has no input")
        elif bytes(inode.data) != result_of(source.data):
            self.fail("torn", f"{proc.name} published a torn or wrong {where}: {bytes(inode.data)[:40]!r}")

    def _lost_claim(self, proc: Any, dir_path: str, task: str, where: str, story: str) -> None:
        """A publish on a lost claim: why did the fence check (the thread's last stat of its claim,
        among its few calls before the link) not stop it?"""
        claim = f"{dir_path}/{task}.claim."
        stats = [c for c in self.world.kernel.current.recent[:-1]
                 if len(c) == 4 and c[0] == "stat" and str(c[1]).startswith(claim)]
        check = stats[-1] if stats else ()
        checked = bool(check) and check[2].creator is proc
        if checked and check[3] is check[2]:
            self.fail("fence-race", f"{proc.name} published {where}: {story}; its fence check found the "
                      f"claim its own, and the claim was fenced between that check and this link")
        elif checked:
            self.fail("stale-fence-check", f"{proc.name} published {where}: {story}; its fence check "
                      f"was answered from its node's NFS cache, which still showed its own inode")
        else:
            self.fail("lost-claim-publish", f"{proc.name} published {where}: {story} (no fence check)")

    def _claim_story(self, proc: Any, dir_path: str, task: str) -> str:
        """When the publisher won its claim on ``task``, relative to CLOSED."""
        closed_at = self._named_at.get((_round_of(dir_path), layout.CLOSED), 0.0)
        parent = self.world.server.resolve(dir_path)
        for name, ino in (parent.entries or {}).items() if parent is not None else ():
            inode = self.world.server.inodes.get(ino)
            entry = layout.parse(name)
            if entry and entry.kind == layout.CLAIM and entry.task == task and inode is not None \
                    and inode.creator is proc:
                won = self._named_at.get((dir_path, name), 0.0)
                return (f"its claim {name} was won {'after' if won > closed_at else 'before'} CLOSED "
                        f"and is {'still' if won > closed_at else 'not fenced, still'} its own")
        return "its claim on the task was fenced or is gone: it published on a lost claim"

    def _fenced(self, proc: Any, dir_path: str, name: str, holder_inode: Any, start: float) -> None:
        """Claim ``name`` was renamed over: was its holder alive and heartbeating?"""
        self.stats["fenced"] += 1
        holder = holder_inode.creator
        server = self.world.server
        closed = server.resolve(f"{_round_of(dir_path)}/{layout.CLOSED}") is not None
        if holder is None or holder.crashed or closed:
            self.stats["fenced_dead"] += 1
            return
        now = self.world.kernel.now
        points = [start] + [t for t in holder_inode.changes if start <= t <= now] + [now]
        gap = max(points[i + 1] - points[i] for i in range(len(points) - 1))
        frozen = any(a < now and b > start for a, b in holder.frozen_secs)
        if gap + self.actimeo + SLACK >= self.lease and not frozen and holder.role == "worker":
            self.fail("abandoned-claim", f"{proc.name} broke the claim {self._short(dir_path, name)} of "
                      f"{holder.name}, which lived and was never frozen but went {gap:.2f} s without a "
                      f"heartbeat: it gave its live claim up")
        if gap + self.actimeo + SLACK < self.lease:
            self.fail("live-claim-broken", f"{proc.name} broke the live claim "
                      f"{self._short(dir_path, name)} of {holder.name}, which heartbeat every {gap:.2f} s "
                      f"or less (lease {self.lease:.1f} s)")

    # -- the end -----------------------------------------------------------------------------
    def finish(self, over: str) -> None:
        """Liveness: the run ended, the master returned, every task is done or failed."""
        if self.violations:
            return
        world = self.world
        if not over.startswith("done"):
            self.fail("not-ended", f"the run did not end: {over}")
            return
        master = world.last_master
        summary = master.result if master is not None else None
        stopped = world.exists(f"{world.root}/{layout.STOP}")
        if summary is None and not stopped:
            self.fail("not-ended", "the run ended without a master that returned or wrote STOP")
            return
        last, total = world.last_round(), 0
        rounds = summary.rounds if summary is not None else 1  # died after STOP: its last round
        for number in range(last - rounds + 1, last + 1):  # the rounds the last master ran
            round_path = f"{world.root}/{layout.round_name(number)}"
            shards = [f"{round_path}/{n}" for n in world.names(round_path)
                      if layout.shard_index(n) is not None]
            inputs = [(shard, n[:-3]) for shard in shards for n in world.names(shard) if n.endswith(".in")]
            total += len(inputs)
            for shard, task in inputs:
                if not any(world.exists(f"{shard}/{task}.{kind}") for kind in ("out", "failed")):
                    self.fail("not-ended", f"task {task} of round {number} is neither done nor failed "
                              f"at the end")
                    return
        if summary is not None and summary.done + len(summary.failed) != total:
            self.fail("not-ended", f"the master's summary ({summary}) does not count the {total} tasks")

    def _short(self, dir_path: str, name: str) -> str:
        return self.world.short(f"{dir_path}/{name}")


def _round_of(dir_path: str) -> str:
    """The round directory of a task's directory (its shard's parent)."""
    parent, _, name = dir_path.rpartition("/")
    return parent if layout.shard_index(name) is not None else dir_path
