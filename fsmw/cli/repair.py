"""``fsmw stop``, ``requeue`` and ``clean``: repairs that never touch live work.

* ``stop`` writes the stop file: workers start no new task and exit at
  their next poll (they look for it at most once a second), a running task
  is interrupted and given back, or finished first (``on_stop``); a waiting
  master returns its summary (marked stopped) at its next poll and closes the
  round, which ends the attempts still running there (their results become
  ``.dup``).
* ``requeue --failed`` makes failed tasks of open rounds pending again: their
  error records and used claims are renamed ``<name>.requeued`` (kept for
  reading, no longer counted) *before* the failure mark goes, so no worker
  can see the old count and mark the task failed again.
* ``requeue --stale`` watches the running claims for ``--lease`` seconds with
  a lease judge (``_core.lease``) on this host's monotonic clock, like a
  worker, and breaks those whose heartbeat never moved exactly as a worker
  would (win generation g+1, then ``RoundDir.break_claim``), then releases
  the task.  No clock is compared with an mtime: a live holder touches its
  claim every ``lease_secs / 5``, so a live claim always moves.
* ``clean`` removes temp files older than ``--age`` (file-system clock) and,
  in closed rounds, claim tokens older than ``--age`` and the claims of tasks
  that have a result or a failure mark (debris of holders that died).
"""

from __future__ import annotations

import argparse
import os
from typing import Callable, Dict, List, Optional, Tuple

from .._core import layout as names
from .._core.claims import try_claim
from .._core.lease import LeaseJudge
from .._core.owner import owner_facts
from .._core.records import format_record
from .._core.shard import LEGACY, Shard
from .._core.view import scan_names
from .roundfiles import RoundFiles
from .._core.errors import StoreError
from .._core.store import Store
from .._core.atomic import unlink_quietly
from .._core.system import REAL_CLOCK, Clock, FileSystem
from .snapshot import Running, round_state, store_now

REQUEUED_BY = "fsmw requeue"


def stop_command(args: argparse.Namespace) -> int:
    store = Store(args.store)
    store.check()
    if not store.rounds() and not store.stopped():
        raise StoreError(f"{store.root} is not an fsmw store: it has no round directory "
                         f"(is the path right, or has the master not started yet?)")
    store.write_stop(dict(owner_facts("fsmw stop", None, os.environ), reason="stopped with fsmw stop"))
    print(f"wrote {store.stop_file}: workers start no new task and exit within about a second of "
          f"their next poll; the master returns at its next poll")
    return 0


def _open_rounds(store: Store) -> List[int]:
    return [n for n in store.rounds() if not store.round(n).has(names.CLOSED)]


def requeue_command(args: argparse.Namespace, clock: Clock = REAL_CLOCK) -> int:
    store = Store(args.store)
    store.check()
    rounds = _open_rounds(store)
    if not rounds:
        print(f"no open round in {store.root}: nothing a running master still waits for")
        return 0
    if args.failed:
        count = sum(_requeue_failed(RoundFiles(store.round(number)), args.dry_run) for number in rounds)
    else:
        count = requeue_stale(store, rounds, args.lease, args.dry_run, clock)
    if count and not args.dry_run:
        for number in rounds:  # workers look at every shard again, finished ones included
            store.round(number).write_marker(names.REQUEUED, f"requeued: {count} task(s)\n")
    verb = "would requeue" if args.dry_run else "requeued"
    print(f"{verb} {count} task(s)")
    return 0


def _requeue_failed(round_dir: RoundFiles, dry_run: bool) -> int:
    view = round_dir.scan()
    tasks = sorted(view.failed - view.outputs)
    for task in tasks:
        print(f"round {round_dir.number} {task}: failed -> pending")
        if dry_run:
            continue
        # Error records and the used claims are set aside together, so the
        # task starts again from generation 1 with a clean attempt count.
        shard = round_dir.shard(task)
        for gen in view.errors.get(task, []):
            shard.set_aside(task, names.ERR, gen)
        for gen in view.claims.get(task, []):
            shard.set_aside(task, names.CLAIM, gen)
        round_dir.unlink(names.file_name(task, names.FAILED))
    return len(tasks)


Watched = Dict[str, Tuple[Shard, Running, int]]


def requeue_stale(store: Store, rounds: List[int], lease: float, dry_run: bool, clock: Clock) -> int:
    """Watch the running claims of ``rounds`` for ``lease`` seconds; break the silent ones."""
    judge, watched = LeaseJudge(clock.now), _running_claims(store, rounds)
    for path, (round_dir, _, _) in watched.items():
        _observe(judge, path, round_dir)
    if not watched:
        return 0
    print(f"watching {len(watched)} running claim(s) for {lease:.0f} s ...", flush=True)
    clock.sleep(lease)
    count = 0
    for path, (round_dir, run, next_gen) in sorted(watched.items()):
        silent = _observe(judge, path, round_dir)
        if silent is None or silent < lease:
            continue  # it moved (alive) or is gone (finished, released, broken)
        print(f"round {round_dir.number} {run.task}: claim {run.attempt} silent for {silent:.0f} s "
              f"(worker {run.worker_id}@{run.host}) -> pending")
        if dry_run or _break(round_dir, run, next_gen, silent):
            count += 1
    return count


def _running_claims(store: Store, rounds: List[int]) -> Watched:
    now, _ = store_now(store)
    watched: Watched = {}
    for number in rounds:
        state = round_state(store, number, now)
        files = RoundFiles(store.round(number))
        files.scan()
        for run in state.running:
            shard = files.shard(run.task)
            path = shard.file(run.task, names.CLAIM, run.attempt)
            watched[path] = (shard, run, state.view.next_gen(run.task))
    return watched


def _observe(judge: LeaseJudge, path: str, round_dir: Shard) -> Optional[float]:
    """Seconds the claim's heartbeat has stood still for the judge; None if it is gone."""
    try:
        st = round_dir.fs.stat(path)
    except OSError:
        return None
    return judge.observe(path, st).unchanged_secs


def _break(round_dir: Shard, run: Running, next_gen: int, silent: float) -> bool:
    facts = owner_facts("fsmw requeue", None, os.environ, round_dir.fs)
    won = try_claim(round_dir.file(run.task, names.CLAIM, next_gen), run.task, next_gen,
                    format_record(dict(task=run.task, attempt=next_gen, **facts)), fs=round_dir.fs)
    if won is None:
        return False  # someone else is breaking or took it: leave it to them
    # fsmw requeue does not know the workers' max_attempts: it marks nothing failed.
    round_dir.break_claim(run.task, run.attempt, silent, REQUEUED_BY, None, won,
                          note="requeued by fsmw requeue")
    won.release()
    return True


def clean_command(args: argparse.Namespace) -> int:
    store = Store(args.store)
    store.check()
    now, _ = store_now(store)
    doomed: List[str] = _old_entries(store.fs, store.path, store.root_names(), now, args.age)
    for number in store.rounds():
        round_dir = store.round(number)
        closed = round_dir.has(names.CLOSED)
        for shard in round_dir.each_shard():
            entries = shard.listing()
            doomed += _old_entries(store.fs, shard.join, entries, now, args.age)
            if closed:  # a dead worker's token stays until its round is closed
                doomed += _old_entries(store.fs, shard.join, entries, now, args.age, _is_token)
                view = scan_names(entries)
                doomed += [shard.file(t, names.CLAIM, g)
                           for t, gens in view.claims.items() if view.finished(t) for g in gens]
        if round_dir.shards() != [LEGACY]:  # (a round before shards: its temps are listed above)
            doomed += _old_entries(store.fs, round_dir.join, round_dir.listing(), now, args.age)
    for path in doomed:
        print(("would remove " if args.dry_run else "removed ") + path)
        if not args.dry_run:
            unlink_quietly(path, store.fs)
    print(f"{len(doomed)} file(s) {'to remove' if args.dry_run else 'removed'}")
    return 0


def _is_token(name: str) -> bool:
    return name.startswith(names.TOKEN_PREFIX)


def _old_entries(fs: FileSystem, join: Callable[[str], str], entries: List[str], now: float,
               age: float, pick: Callable[[str], bool] = names.is_temp) -> List[str]:
    """The entries ``pick`` selects whose mtime is older than ``age`` (store time ``now``)."""
    old = []
    for path in map(join, filter(pick, entries)):
        try:
            if now - fs.stat(path).st_mtime > age:
                old.append(path)
        except OSError:
            pass
    return old
