"""Sharded rounds, one pass at a time: how the master spreads inputs over shards, how a
worker walks them (on, around, and back after ``REQUEUED``), and rounds of the old layout.

A small ``shard_size`` (3) makes a round of 7 tasks three shards: 3 + 3 + 1 inputs.
Worker tests build the round by hand in the layout ``fsmw._core.rounddir`` documents;
master tests let the master write it.
"""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path

import pytest

import fsmw
from fsmw import StepResult, StoreError
from fsmw._core.atomic import write_replace
from support.clock import FakeClock
from support.stores import Squarer, foreign_claim, round_dir, tasks_dir

SIZE = 3
LEASE = 10.0
# Creation order is not name order, so "in creation order" and "by name" differ.
TASKS = {"t6": 6, "t5": 5, "t4": 4, "t3": 3, "t2": 2, "t1": 1, "t0": 0}
ORDER = list(TASKS)
SHARDS = [ORDER[:3], ORDER[3:6], ORDER[6:]]  # what shard_size=3 makes of them
SQUARES = {t: str(v * v) for t, v in TASKS.items()}


def sharded_round(root, tasks=TASKS, size=SIZE, number=1, sealed=True):
    """Round ``number`` as a master with ``shard_size=size`` leaves it: the inputs ``tasks``
    ({name: value}, in creation order) in shard-000000/, shard-000001/, ... ``size`` each."""
    store = fsmw.Store(root)
    round_dir(root, number).mkdir(parents=True)
    for i, (name, value) in enumerate(tasks.items()):
        shard = tasks_dir(root, number, i // size)
        shard.mkdir(exist_ok=True)
        write_replace(shard / f"{name}.in", str(value).encode())
    if sealed:
        write_replace(store.marker(number, "SEALED"), f"tasks: {len(tasks)}\n".encode())
    return store


def shard_names(root, pattern, number=1):
    """[the tasks with a file matching ``pattern`` ("*.in"...), sorted] per shard, in shard order."""
    shards = sorted(round_dir(root, number).glob("shard-*"))
    assert [p.name for p in shards] == [f"shard-{i:06d}" for i in range(len(shards))]
    return [sorted(p.name.split(".")[0] for p in shard.glob(pattern)) for shard in shards]


def outputs(root, number=1):
    """The tasks with an output, in any shard of round ``number``."""
    return {p.name[:-len(".out")] for p in round_dir(root, number).glob("shard-*/*.out")}


def step_noting(worker, root):
    """One step of ``worker``: (its result, the tasks whose output appeared meanwhile)."""
    before = outputs(root)
    result = worker.step()
    return result, outputs(root) - before


def worker(root, clock, **options):
    options.setdefault("lease_secs", LEASE)
    options.setdefault("lockfile_timeout_threshold", 0)  # no backup copies: only what a test sets up
    return Squarer(root, worker_id=1, clock=clock, **options)


def stepping(root, **options):
    """A fake clock during whose sleeps a worker takes a step (it works while the master waits);
    a master still waiting after a (fake) hour fails the test."""
    clock = FakeClock()
    w = worker(root, clock, **options)

    def step(secs):
        assert clock.secs < 3600, "the master is still waiting after an hour"
        w.step()

    clock.on_sleep = step
    clock.worker = w
    return clock


class Tasks(fsmw.Master):
    """Writes ``TASKS`` in their order; notes the shards' inputs after each one, and the outputs."""

    def __init__(self, root, **options):
        options.setdefault("clock", FakeClock())
        super().__init__(root, shard_size=SIZE, lease_secs=LEASE, **options)
        self.after_each = []  # shard_names(*.in) after each create_input_file()
        self.written = []  # the path create_input_file() returned
        self.seen = []  # per process_output_files(): [(task, path, output)], len(outputs)

    def create_input_files(self):
        for name, value in TASKS.items():
            self.written.append(self.create_input_file(name, str(value)))
            self.after_each.append(shard_names(self.store.root, "*.in", self.round))

    def process_output_files(self, outputs):
        listed = [(task, outputs[task], outputs[task].read_text()) for task in outputs]
        self.seen.append((listed, len(outputs)))
        assert "nope" not in outputs
        with pytest.raises(KeyError):
            outputs["nope"]
        return False


def test_the_master_fills_one_shard_at_a_time_in_creation_order(tmp_path):
    master = Tasks(tmp_path)
    master.store.check(create=True)
    master.begin_round(1)
    for count, shards in enumerate(master.after_each, 1):
        # A new shard only once the one before holds shard_size inputs; each input where it belongs.
        full, rest = divmod(count, SIZE)
        assert [len(s) for s in shards] == [SIZE] * full + ([rest] if rest else []), count
        assert shards == [sorted(ORDER[i:min(i + SIZE, count)]) for i in range(0, count, SIZE)], count
    expected = [sorted(s) for s in SHARDS]
    assert shard_names(tmp_path, "*.in") == expected
    every = [task for shard in shard_names(tmp_path, "*.in") for task in shard]
    assert sorted(every) == sorted(TASKS) and len(every) == len(set(every))  # each in exactly one shard
    assert master.written == [tasks_dir(tmp_path, 1, i // SIZE) / f"{t}.in" for i, t in enumerate(ORDER)]
    for i, task in enumerate(ORDER):
        assert (tasks_dir(tmp_path, 1, i // SIZE) / f"{task}.in").read_text() == str(TASKS[task])
    # The round's own directory: the marker and the shards, no task file.
    assert sorted(os.listdir(round_dir(tmp_path))) == ["SEALED", "shard-000000", "shard-000001",
                                                       "shard-000002"]
    assert (round_dir(tmp_path) / "SEALED").read_text().startswith("tasks: 7\n")


def test_a_worker_runs_every_task_of_every_shard_and_the_master_gets_them_shard_by_shard(tmp_path):
    clock = stepping(tmp_path)
    master = Tasks(tmp_path, clock=clock)
    summary = master.run()
    assert summary.done == 7 and summary.failed == [] and clock.worker.tasks_done == 7
    # Each output next to its input, none elsewhere.
    assert shard_names(tmp_path, "*.out") == [sorted(s) for s in SHARDS]
    ((listed, count),) = master.seen
    assert count == 7
    # Shard by shard (the order the inputs were written in), by name within a shard.
    assert [task for task, _, _ in listed] == [t for shard in SHARDS for t in sorted(shard)]
    for task, path, text in listed:
        shard = ORDER.index(task) // SIZE
        assert path == tasks_dir(tmp_path, 1, shard) / f"{task}.out" and text == SQUARES[task]


def test_outputs_are_looked_up_by_name_in_any_shard_in_any_order(tmp_path):
    seen = {}

    class Lookups(Tasks):
        def process_output_files(self, outputs):
            # No iteration first: lookups of tasks in different shards, last shard first.
            seen.update({task: outputs[task] for task in reversed(ORDER)})
            seen["len"] = len(outputs)
            seen["keys"] = list(outputs.keys())
            seen["again"] = outputs[ORDER[0]]  # after iterating: from the first shard again
            return False

    assert Lookups(tmp_path, clock=stepping(tmp_path)).run().done == 7
    for i, task in enumerate(ORDER):
        assert seen[task] == tasks_dir(tmp_path, 1, i // SIZE) / f"{task}.out"
    assert seen["len"] == 7 and len(seen["keys"]) == 7
    assert seen["again"] == tasks_dir(tmp_path, 1, 0) / f"{ORDER[0]}.out"


def test_a_worker_works_a_round_shard_after_shard_while_the_master_still_writes_it(tmp_path):
    clock = FakeClock()
    w = worker(tmp_path, clock)
    assert w.step() is StepResult.IDLE  # no store yet
    steps = []

    class Interleaved(Tasks):
        def create_input_files(self):
            for name, value in TASKS.items():
                self.create_input_file(name, str(value))
                steps.append((name, step_noting(w, tmp_path)))

    master = Interleaved(tmp_path, clock=clock)
    master.store.check(create=True)
    master.begin_round(1)
    # Each input is run as soon as it is written: a shard not yet full is not passed for good,
    # and a new shard is found.
    assert steps == [(name, (StepResult.WORKED, {name})) for name in ORDER]
    assert step_noting(w, tmp_path) == (StepResult.IDLE, set())
    assert master.step() is True


class Crash(Exception):
    """The first master dies here (stands in for SIGKILL)."""


@pytest.mark.parametrize("written", [2, 3, 4, 6])
def test_a_master_that_died_writing_inputs_fills_the_shards_on_as_a_fresh_one_would(tmp_path, written):
    class Dying(Tasks):
        def create_input_file(self, name, data):
            if len(self.written) == written:
                raise Crash(f"the master died after writing {written} inputs")
            return super().create_input_file(name, data)

    with pytest.raises(Crash):
        Dying(tmp_path).run()
    assert sum(map(len, shard_names(tmp_path, "*.in"))) == written
    assert not (round_dir(tmp_path) / "SEALED").exists()
    before = {p.relative_to(tmp_path): p.stat().st_ino for p in round_dir(tmp_path).glob("shard-*/*.in")}
    clock = stepping(tmp_path)
    restarted = Tasks(tmp_path, clock=clock)
    assert restarted.run().done == 7
    assert shard_names(tmp_path, "*.in") == [sorted(s) for s in SHARDS]  # as if it never died
    assert {p: (tmp_path / p).stat().st_ino for p in before} == before  # nothing rewritten
    fresh = Tasks(tmp_path / "fresh")
    fresh.store.check(create=True)
    fresh.begin_round(1)
    sealed = (round_dir(tmp_path) / "SEALED").read_text()
    assert sealed == (round_dir(tmp_path / "fresh") / "SEALED").read_text()  # tasks: 7 and the same digest
    assert not [p for p in round_dir(tmp_path).rglob(".tmp.*")]


def run_out(w, root, steps=30):
    """Step ``w`` until a step is IDLE; the tasks whose output a step made, in order."""
    ran = []
    for _ in range(steps):
        result, new = step_noting(w, root)
        if result is StepResult.IDLE:
            return ran
        assert result is StepResult.WORKED and len(new) <= 1, (result, new)  # none: a failed attempt
        ran += new
    raise AssertionError(f"still working after {steps} steps: {ran}")


@pytest.mark.parametrize("freed", ["released", "failed attempt"])
def test_a_worker_moves_past_a_shard_claimed_by_others_and_comes_back_when_a_task_there_is_free(
        tmp_path, freed):
    store = sharded_round(tmp_path)
    first = SHARDS[0]
    claims = {task: foreign_claim(store, task) for task in first}  # others run all of shard 0, alive
    w = worker(tmp_path, FakeClock())
    ran = run_out(w, tmp_path)
    # On to shard 1 (all of it), then shard 2; nothing of shard 0 taken.
    assert sorted(ran[:3]) == sorted(SHARDS[1]) and ran[3:] == SHARDS[2]
    assert sorted(p.name for p in tasks_dir(tmp_path).glob("*.claim.*")) == \
        sorted(f"{t}.claim.1" for t in first)
    assert all(claims[t].read_text().startswith("host: elsewhere") for t in first)
    assert [step_noting(w, tmp_path) for _ in range(3)] == [(StepResult.IDLE, set())] * 3
    task = first[1]
    if freed == "released":  # its holder gave it back: the claim is gone
        claims[task].unlink()
        gen = 1
    else:  # its holder's attempt failed: the error record ends it, the claim stays
        write_replace(store.task_file(1, task, "err", 1), b"error: boom\n")
        gen = 2
    assert step_noting(w, tmp_path) == (StepResult.WORKED, {task})  # wrapped around to shard 0
    assert store.task_file(1, task, "out").read_text() == SQUARES[task]
    assert "worker_id: 1" in store.task_file(1, task, "claim", gen).read_text()
    assert step_noting(w, tmp_path) == (StepResult.IDLE, set())
    assert outputs(tmp_path) == set(SHARDS[1] + SHARDS[2] + [task])


def beat(*claims):
    """The holders of ``claims`` are alive: their heartbeats move."""
    for path in claims:
        st = os.stat(path)
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def test_a_stale_claim_in_a_shard_behind_the_worker_is_broken_within_a_lease(tmp_path):
    tasks = {f"t{i}": i for i in range(9)}  # shards t0-t2, t3-t5, t6-t8
    store = sharded_round(tmp_path, tasks)
    live = [foreign_claim(store, t) for t in ("t0", "t1")]
    dead = foreign_claim(store, "t2")  # its holder died: no heartbeat from now on
    clock = FakeClock()
    w = worker(tmp_path, clock)
    ran = []
    while not store.task_file(1, "t2", "err", 1).exists():
        assert clock.secs <= LEASE, "the stale claim was not broken within a lease"
        beat(*live)
        result, new = step_noting(w, tmp_path)
        assert result is StepResult.WORKED and len(new) == 1
        ran += new
        clock.advance(LEASE / 4)  # a judging pass each step
    # Broken at the first judging pass a lease after the worker first saw it (at 0) ...
    broke_at = clock.secs - LEASE / 4
    assert LEASE <= broke_at <= LEASE + LEASE / 4
    # ... while the worker worked in a later shard: shard 1 done, shard 2 begun and not done.
    assert sorted(ran[:3]) == ["t3", "t4", "t5"] and set(ran[3:-1]) <= {"t6", "t7", "t8"}
    assert ran[-1] == "t2" and len(ran) < 9
    record = store.task_file(1, "t2", "err", 1).read_text()
    assert "lease expired" in record and "elsewhere" in record
    assert "broken_by" in dead.read_text()  # fenced
    assert "worker_id: 1" in store.task_file(1, "t2", "claim", 2).read_text()
    assert store.task_file(1, "t2", "out").read_text() == "4"
    for path in live:  # the live ones are left alone
        assert path.read_text().startswith("host: elsewhere")
    assert not store.task_file(1, "t0", "err", 1).exists() and not store.task_file(1, "t1", "err", 1).exists()
    beat(*live)
    assert sorted(run_out(w, tmp_path) + ran) == sorted(set(tasks) - {"t0", "t1"})


def test_an_idle_worker_breaks_a_stale_claim_in_any_unfinished_shard_within_a_lease(tmp_path):
    tasks = {f"t{i}": i for i in range(9)}  # shards t0-t2, t3-t5, t6-t8
    store = sharded_round(tmp_path, tasks)
    live = [foreign_claim(store, "t0"), foreign_claim(store, "t3")]  # long tasks, alive, in shards 0 and 1
    dead = foreign_claim(store, "t6")  # in the last shard; its holder died
    for task in ("t1", "t2", "t4", "t5", "t7", "t8"):
        write_replace(store.task_file(1, task, "out"), b"x")
    clock = FakeClock()
    w = worker(tmp_path, clock)  # nothing left to start: every pass is idle, every step a judging pass
    while not store.task_file(1, "t6", "err", 1).exists():
        assert clock.secs <= 3 * LEASE, "the stale claim in the last shard was never broken"
        beat(*live)
        assert step_noting(w, tmp_path)[0] in (StepResult.IDLE, StepResult.WORKED)
        clock.advance(LEASE / 4)
    broke_at = clock.secs - LEASE / 4
    assert LEASE <= broke_at <= LEASE + LEASE / 4
    assert "broken_by" in dead.read_text() and store.task_file(1, "t6", "out").read_text() == "36"
    assert all(path.read_text().startswith("host: elsewhere") for path in live)


def requeue_failed(store, task, number=1):
    """What ``fsmw requeue --failed`` does to ``task`` (see fsmw/cli/repair.py): its error records
    and used claims set aside, its failure mark removed."""
    shard = store.round(number).find(task)
    view = shard.scan()
    for gen in view.errors.get(task, []):
        shard.set_aside(task, "err", gen)
    for gen in view.claims.get(task, []):
        shard.set_aside(task, "claim", gen)
    shard.unlink(f"{task}.failed")


def test_a_worker_looks_again_at_a_finished_shard_once_requeued_changes(tmp_path):
    store = sharded_round(tmp_path)
    clock = FakeClock()
    w = worker(tmp_path, clock, max_attempts=1)
    task = SHARDS[0][1]
    w.fail = (TASKS[task],)
    ran = run_out(w, tmp_path)  # shard 0 first: the task fails there, at once for good
    assert sorted(ran) == sorted(set(TASKS) - {task})
    assert store.task_file(1, task, "failed").exists()
    w.fail = ()
    requeue_failed(store, task)
    assert sorted(p.name for p in tasks_dir(tmp_path).glob(f"{task}.*")) == \
        [f"{task}.claim.1.requeued", f"{task}.err.1.requeued", f"{task}.in"]
    # The worker saw shard 0 finished: it does not list it again, REQUEUED unchanged ...
    for _ in range(3):
        clock.advance(1.0)  # each step a look for STOP, CLOSED and REQUEUED
        assert step_noting(w, tmp_path) == (StepResult.IDLE, set())
    # ... and does once fsmw requeue writes it.
    store.round(1).write_marker("REQUEUED", "requeued: 1 task(s)\n")
    clock.advance(1.0)
    assert step_noting(w, tmp_path) == (StepResult.WORKED, {task})
    assert store.task_file(1, task, "out").read_text() == SQUARES[task]
    assert "worker_id: 1" in store.task_file(1, task, "claim", 1).read_text()
    assert step_noting(w, tmp_path) == (StepResult.IDLE, set())


def test_a_requeued_shard_is_found_again_whenever_requeued_is_rewritten(tmp_path):
    store = sharded_round(tmp_path)
    clock = FakeClock()
    w = worker(tmp_path, clock, max_attempts=1)
    w.fail = tuple(TASKS[t] for t in (SHARDS[0][0], SHARDS[1][0]))
    run_out(w, tmp_path)
    w.fail = ()
    for task in (SHARDS[0][0], SHARDS[1][0]):  # two requeues, one after the other
        assert store.task_file(1, task, "failed").exists()
        requeue_failed(store, task)
        store.round(1).write_marker("REQUEUED", "requeued: 1 task(s)\n")
        clock.advance(1.0)
        assert step_noting(w, tmp_path) == (StepResult.WORKED, {task})
    assert outputs(tmp_path) == set(TASKS)


def test_the_master_counts_a_failure_in_an_early_shard_and_the_rest_done(tmp_path, capsys):
    failing = SHARDS[0][1]
    clock = stepping(tmp_path, max_attempts=2)
    clock.worker.fail = (TASKS[failing],)
    master = Tasks(tmp_path, clock=clock, max_attempts=2, progress=True)
    summary = master.run()
    assert summary.done == 6 and summary.rounds == 1
    assert [(f.round, f.task) for f in summary.failed] == [(1, failing)]
    assert summary.failed[0].error == f"ValueError: no square for {TASKS[failing]}"
    ((listed, count),) = master.seen
    assert count == 6 and [t for t, _, _ in listed] == [t for s in SHARDS for t in sorted(s) if t != failing]
    assert sorted(p.name for p in tasks_dir(tmp_path).glob(f"{failing}.*")) == \
        [f"{failing}.claim.1", f"{failing}.claim.2", f"{failing}.err.1", f"{failing}.err.2",
         f"{failing}.failed", f"{failing}.in"]
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("round 1 [" + "#" * 30 + "] 6/7  1 failed ") and last.endswith(" done")


def test_the_master_counts_shard_by_shard_and_is_complete_only_once_the_last_shard_is(tmp_path, capsys):
    clock = FakeClock()
    master = Tasks(tmp_path, clock=clock, max_attempts=2, progress=True, progress_secs=1.0)
    master.store.check(create=True)
    master.begin_round(1)
    store = master.store

    def poll():
        """One master step: (complete, done, failed) as its progress line shows them."""
        clock.advance(1.0)  # a progress line is due
        complete = master.step()
        line = capsys.readouterr().err.strip().splitlines()[-1]
        found = re.search(r"\] (\d+)/7  (\d+) failed  ", line)
        assert found, line
        return complete, int(found[1]), int(found[2])

    assert poll() == (False, 0, 0)
    failing = SHARDS[0][1]
    for gen in (1, 2):  # attempts used up; the worker died before marking it (the master does)
        write_replace(store.task_file(1, failing, "err", gen), b"error: boom\n")
    assert poll() == (False, 0, 1)
    assert store.task_file(1, failing, "failed").exists()
    done = 0
    for task in ORDER[:-1]:  # all but the last shard's one task
        if task != failing:
            write_replace(store.task_file(1, task, "out"), b"x")
            done += 1
            assert poll() == (False, done, 1), task
    write_replace(store.task_file(1, ORDER[-1], "out"), b"x")
    assert poll() == (True, 6, 1)


def legacy_round(root, tasks, sealed=True):
    """Round 1 as an fsmw from before shards left it: task files in the round directory itself."""
    top = round_dir(root)
    top.mkdir(parents=True)
    for name, value in tasks.items():
        write_replace(top / f"{name}.in", str(value).encode())
    if sealed:
        write_replace(top / "SEALED", f"tasks: {len(tasks)}\n".encode())
    return fsmw.Store(root)


def test_a_worker_works_a_round_of_the_old_layout_as_one_shard(tmp_path):
    tasks = {"a": 1, "b": 2, "c": 3, "d": 4}
    store = legacy_round(tmp_path, tasks)
    foreign_claim(store, "d")  # still running elsewhere (task_file finds it in the round directory)
    assert (round_dir(tmp_path) / "d.claim.1").exists()
    w = worker(tmp_path, FakeClock())
    worked = 0
    while (result := w.step()) is StepResult.WORKED:
        worked += 1
    assert result is StepResult.IDLE and worked == 3
    top = round_dir(tmp_path)
    for name, value in tasks.items():
        if name != "d":
            assert (top / f"{name}.out").read_text() == str(value * value)
            assert "worker_id: 1" in (top / f"{name}.claim.1").read_text()
    assert not list(top.glob("shard-*")) and not (top / "d.out").exists()
    assert [n for n in os.listdir(top) if n.startswith(".journal.")]  # journals where they always were


def test_a_master_refuses_to_resume_an_open_round_of_the_old_layout(tmp_path):
    tasks = {"a": 1, "b": 2}
    store = legacy_round(tmp_path, tasks)
    write_replace(round_dir(tmp_path) / "a.out", b"1")
    before = sorted(os.listdir(round_dir(tmp_path)))

    class Same(fsmw.Master):
        def create_input_files(self):
            for name, value in tasks.items():
                self.create_input_file(name, str(value))

    with pytest.raises(StoreError) as caught:
        Same(tmp_path, clock=FakeClock(), progress=False).run()
    message = str(caught.value)
    assert str(round_dir(tmp_path)) in message and "before shards" in message
    assert "abandon_open_round" in message  # what to do
    assert sorted(os.listdir(round_dir(tmp_path))) == before and not (tmp_path / "STOP").exists()
    assert [p.name for p in tmp_path.glob("round-*")] == ["round-000001"]
    # What it says to do works: the old round is closed, and a new one (in shards) runs.
    clock = stepping(tmp_path)
    summary = Same(tmp_path, clock=clock, progress=False, abandon_open_round=True).run()
    assert summary.done == 2
    assert (round_dir(tmp_path) / "CLOSED").read_text() == "abandoned; next: round-000002\n"
    assert (tasks_dir(tmp_path, 2) / "b.out").read_text() == "4"
    assert store.rounds() == [1, 2] and not (round_dir(tmp_path) / "b.out").exists()


def test_the_shards_of_a_round_are_listed_in_order_and_a_task_found_in_its_shard(tmp_path):
    store = sharded_round(tmp_path)
    (round_dir(tmp_path) / "shard-000002" / "notes.txt").write_text("junk")  # foreign files are ignored
    (round_dir(tmp_path) / "notes.txt").write_text("junk")
    rd = store.round(1)
    assert rd.shards() == [0, 1, 2] and [s.index for s in rd.each_shard()] == [0, 1, 2]
    for i, task in enumerate(ORDER):
        assert Path(rd.find(task).path) == tasks_dir(tmp_path, 1, i // SIZE)
        assert store.task_file(1, task, "out") == tasks_dir(tmp_path, 1, i // SIZE) / f"{task}.out"
    assert rd.find("nope") is None


def test_the_master_removes_dead_temps_of_a_shard_that_finished_long_before_the_round(tmp_path):
    planted = {}

    class Planting(Tasks):
        def create_input_files(self):
            super().create_input_files()
            planted["dead"] = tasks_dir(self.store.root, self.round, 0) / ".tmp.gone.1.deadbeef0"
            planted["dead"].write_bytes(b"a writer that died")

    clock = FakeClock()
    w = worker(tmp_path, clock)
    master = Planting(tmp_path, clock=clock, progress=False)
    held = {}

    def meanwhile(secs):
        assert clock.secs < 3600, "the master is still waiting after an hour"
        if "claim" not in held:  # another worker runs the last shard's task, for a while
            held["claim"] = foreign_claim(master.store, ORDER[-1])
        if clock.secs < 3 * LEASE:
            beat(held["claim"])
        elif held["claim"].exists():  # ... then gives it back; a late writer starts in shard 0
            held["claim"].unlink()
            planted["young"] = planted["dead"].with_name(".tmp.late.2.cafe0")
            planted["young"].write_bytes(b"a live writer, late")
        w.step()

    clock.on_sleep = meanwhile
    assert master.run().done == 7
    assert clock.secs >= 3 * LEASE  # shard 0 was finished for more than two leases
    assert not master.store.task_file(1, ORDER[-1], "err", 1).exists()  # the held claim was not broken
    assert not planted["dead"].exists() and planted["young"].exists()


class Listings(fsmw._core.system.FileSystem):
    """The real file system, recording the directories listed."""

    def __init__(self):
        self.listed = []

    def listdir(self, path):
        self.listed.append(os.path.basename(str(path)))
        return os.listdir(path)


def test_a_master_poll_lists_the_unfinished_shards_up_to_the_first_untouched_one(tmp_path):
    from fsmw._master.counts import RoundCounts
    tasks = {f"t{i}": i for i in range(9)}  # three full shards
    store = sharded_round(tmp_path, tasks)
    fs = Listings()
    counts = RoundCounts(fsmw.Store(tmp_path, fs).round(1), 3, log=None)
    counts.poll(sealed=True)
    assert fs.listed == ["round-000001", "shard-000000"]  # shard 0 untouched: the rest are too
    for task in ("t0", "t1", "t2"):  # shard 0 done, shard 1 has one output
        write_replace(store.task_file(1, task, "out"), b"x")
    write_replace(store.task_file(1, "t3", "out"), b"x")
    fs.listed.clear()
    counts.poll(sealed=True)
    assert fs.listed == ["round-000001", "shard-000000", "shard-000001", "shard-000002"]
    assert (counts.done, counts.finished) == (4, {0})
    fs.listed.clear()
    counts.poll(sealed=True)  # a finished shard is never listed again
    assert fs.listed == ["round-000001", "shard-000001", "shard-000002"]
    for task in tasks:
        write_replace(store.task_file(1, task, "out"), b"x")
    counts.poll(sealed=True)
    assert (counts.done, counts.failed, counts.finished) == (9, 0, {0, 1, 2})


class Stale(fsmw._core.system.FileSystem):
    """The real file system, whose next ``stale`` listings of shard 1 fail with ESTALE (NFS)."""

    stale = 0

    def listdir(self, path):
        if self.stale and str(path).endswith("shard-000001"):
            self.stale -= 1
            raise OSError(errno.ESTALE, "Stale file handle", str(path))
        return os.listdir(path)


def test_a_stale_listing_of_a_shard_never_makes_the_master_take_it_as_finished(tmp_path):
    fs, clock = Stale(), stepping(tmp_path)
    polls = []

    def meanwhile(secs):
        polls.append(secs)
        if len(polls) == 1:
            fs.stale = 1  # the master's next listing of shard 1 fails once
        stepped(secs)

    stepped, clock.on_sleep = clock.on_sleep, meanwhile
    summary = Tasks(tmp_path, clock=clock, fs=fs, progress=False).run()  # ends, in under an hour
    assert summary.done == 7 and fs.stale == 0


def test_outputs_are_never_dropped_when_a_shard_listing_is_stale(tmp_path):
    fs = Stale()

    class Seeing(Tasks):
        def process_output_files(self, outputs):
            fs.stale = 2  # twice in a row: asked again, not taken as empty
            self.got = list(outputs)
            return False

    master = Seeing(tmp_path, clock=stepping(tmp_path), fs=fs, progress=False)
    master.run()
    assert sorted(master.got) == sorted(TASKS) and fs.stale == 0


def test_a_shard_that_cannot_be_listed_fails_the_hand_over_rather_than_drop_its_outputs(tmp_path):
    fs = Stale()

    class Seeing(Tasks):
        def process_output_files(self, outputs):
            fs.stale = 100
            list(outputs)

    with pytest.raises(StoreError, match="cannot list .*shard-000001 to hand over its outputs"):
        Seeing(tmp_path, clock=stepping(tmp_path), fs=fs, progress=False).run()
    assert not (round_dir(tmp_path) / "CLOSED").exists()  # left open: a restarted master resumes it


def test_a_shard_still_filling_behind_a_newer_one_is_not_finished_before_the_round_is_sealed(tmp_path):
    # A resumed master stages an open shard's missing inputs while it makes the next shard
    # (and a master on a shared file system writes inputs on threads): shard 0 may get an
    # input after shard 1 exists.
    sharded_round(tmp_path, {"t0": 0, "t1": 1, "t3": 3}, size=2, sealed=False)
    clock = FakeClock()
    w = worker(tmp_path, clock)
    while w.step() is StepResult.WORKED:
        clock.advance(0.1)
    assert outputs(tmp_path) == {"t0", "t1", "t3"}
    write_replace(tasks_dir(tmp_path, 1, 0) / "t2.in", b"2")  # shard 0's late input
    write_replace(round_dir(tmp_path) / "SEALED", b"tasks: 4\n")
    for _ in range(20):
        if "t2" in outputs(tmp_path):
            break
        w.step()
        clock.advance(1.0)
    assert outputs(tmp_path) == {"t0", "t1", "t2", "t3"}
