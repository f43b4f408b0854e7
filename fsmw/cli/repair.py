"""``fsmw stop``, ``requeue`` and ``clean``: repairs that never touch live work.

* ``stop`` writes the stop file: workers exit at their next poll and the
  master returns its summary (marked stopped).
* ``requeue --failed`` makes failed tasks of open rounds pending again: their
  error records are renamed ``<task>.err.<g>.requeued`` (kept for reading,
  no longer counted) *before* the failure mark goes, so no worker can see the
  old count and mark the task failed again.
* ``requeue --stale`` watches the running claims for ``--lease`` seconds on
  this host's monotonic clock, like a worker's lease judge, and breaks those
  whose heartbeat (ino, mtime, ctime) never moved, exactly as a worker would
  (win generation g+1, record the lost attempt, remove claim g), then
  releases the task.  No clock is compared with an mtime: a live holder
  touches its claim every ``lease_secs / 5``, so a live claim always moves,
  whatever the clocks of the hosts say.
* ``clean`` removes temp files older than ``--age`` (file-system clock) and,
  in closed rounds, claims of tasks that have a result (debris of holders
  that died after publishing).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import List, Optional, Tuple

from .._core import layout as names
from .._core.atomic import unlink_quietly, write_replace
from .._core.claims import break_claim, read_text, try_claim
from .snapshot import check_store, fs_now, round_state
from .._core.owner import format_record, owner_facts, parse_record
from .._core.records import write_error
from .._core.store import Store


def stop_command(args: argparse.Namespace) -> int:
    store = Store(args.store)
    check_store(store)
    facts = dict(owner_facts("fsmw stop", None), reason="stopped with fsmw stop")
    write_replace(store.stop_file, format_record(facts))
    print(f"wrote {store.stop_file}: workers exit at their next poll; the master returns")
    return 0


def _open_rounds(store: Store) -> List[int]:
    return [n for n in store.rounds() if not store.marker(n, names.CLOSED).exists()]


def requeue_command(args: argparse.Namespace) -> int:
    store = Store(args.store)
    check_store(store)
    rounds = _open_rounds(store)
    if not rounds:
        print(f"no open round in {store.root}: nothing a running master still waits for")
        return 0
    if args.failed:
        count = sum(_requeue_failed(store, number, args.dry_run) for number in rounds)
    else:
        count = _requeue_stale(store, rounds, args.lease, args.dry_run)
    verb = "would requeue" if args.dry_run else "requeued"
    print(f"{verb} {count} task(s)")
    return 0


def _requeue_failed(store: Store, number: int, dry_run: bool) -> int:
    view = store.scan(number)
    round_dir = store.round_dir(number)
    tasks = sorted(view.failed - view.outputs)
    for task in tasks:
        print(f"round {number} {task}: failed -> pending")
        if dry_run:
            continue
        # Error records and the used claims are set aside together, so the
        # task starts again from generation 1 with a clean attempt count.
        used = [(names.ERR, g) for g in view.errors.get(task, [])] + \
            [(names.CLAIM, g) for g in view.claims.get(task, [])]
        for kind, gen in used:
            old = round_dir / names.file_name(task, kind, gen)
            try:
                os.rename(old, old.with_name(old.name + ".requeued"))
            except FileNotFoundError:
                pass
        unlink_quietly(round_dir / names.file_name(task, names.FAILED))
    return len(tasks)


def _requeue_stale(store: Store, rounds: List[int], lease: float, dry_run: bool) -> int:
    now, _ = fs_now(store)
    watched = {}
    for number in rounds:
        state = round_state(store, number, now)
        for run in state.running:
            path = store.task_file(number, run.task, names.CLAIM, run.attempt)
            key = _heartbeat(path)
            if key is not None:
                watched[path] = (number, run, key, state.view.next_gen(run.task))
    if not watched:
        return 0
    print(f"watching {len(watched)} running claim(s) for {lease:.0f} s ...", flush=True)
    time.sleep(lease)
    count = 0
    for path, (number, run, key, next_gen) in sorted(watched.items()):
        if _heartbeat(path) != key:
            continue  # it moved (alive) or is gone (finished, released, broken)
        print(f"round {number} {run.task}: claim {run.attempt} silent for {lease:.0f} s "
              f"(worker {run.worker_id}@{run.host}) -> pending")
        if dry_run or _break(store.round_dir(number), run.task, run.attempt, next_gen, lease):
            count += 1
    return count


def _heartbeat(path: Path) -> Optional[Tuple[int, int, int]]:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_ctime_ns)


def _break(round_dir: Path, task: str, gen: int, next_gen: int, age: float) -> bool:
    facts = owner_facts("fsmw requeue", None)
    won = try_claim(round_dir / names.file_name(task, names.CLAIM, next_gen), task, next_gen,
                    format_record(dict(task=task, attempt=next_gen, **facts)))
    if won is None:
        return False  # someone else is breaking or took it: leave it to them
    stale = round_dir / names.file_name(task, names.CLAIM, gen)
    owner = parse_record(read_text(stale) or b"")
    error = f"lease expired: claim {stale.name} silent for {age:.0f} s (requeued by fsmw requeue)"
    write_error(round_dir, task, gen, dict(task=task, attempt=gen, host=owner.get("host", "?"),
                                           pid=owner.get("pid", "?"), error=error))
    break_claim(stale, format_record(dict(broken_by="fsmw requeue", error=error)))
    won.release()
    return True


def clean_command(args: argparse.Namespace) -> int:
    store = Store(args.store)
    check_store(store)
    now, _ = fs_now(store)
    doomed: List[Path] = _old_temps(store.root, store.root_names(), now, args.age)
    for number in store.rounds():
        round_dir = store.round_dir(number)
        entries = store.listing(number)
        doomed += _old_temps(round_dir, entries, now, args.age)
        if names.CLOSED in entries:
            view = store.scan(number)
            doomed += [round_dir / names.file_name(t, names.CLAIM, g)
                       for t, gens in view.claims.items() if view.finished(t) for g in gens]
    for path in doomed:
        print(("would remove " if args.dry_run else "removed ") + str(path))
        if not args.dry_run:
            unlink_quietly(path)
    print(f"{len(doomed)} file(s) {'to remove' if args.dry_run else 'removed'}")
    return 0


def _old_temps(directory: Path, entries: List[str], now: float, age: float) -> List[Path]:
    old = []
    for name in entries:
        if name.startswith(names.TEMP_PREFIX):
            try:
                if now - os.stat(directory / name).st_mtime > age:
                    old.append(directory / name)
            except OSError:
                pass
    return old
