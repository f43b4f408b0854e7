"""A master may crash and be restarted: it resumes the open round (issue 11, item 6).

One process and a fake clock: a first master "dies" by raising (from a
sleep, from ``create_input_files`` or from ``process_output_files``), a
worker takes steps in between, and a second master on the same store resumes.
"""

from __future__ import annotations

import os

import pytest

import fsmw
from fsmw._core.system import FileSystem
from fsmw import RoundMismatch
from fsmw._master.sinks import SHOWN
from support.clock import FakeClock
from support.stores import Squarer, make_round, round_dir, tasks_dir


class Crash(Exception):
    """The first master dies here (stands in for SIGKILL)."""


def crash(secs):
    raise Crash("the master died while waiting")


class Tasks(fsmw.Master):
    """Tasks ``{name: value}`` every round; ``crash_after`` inputs, then it raises."""

    def __init__(self, root, tasks, crash_after=None, rounds=1, fail_process=False, **options):
        options.setdefault("clock", FakeClock())
        super().__init__(root, progress=False, lease_secs=10, **options)
        self.tasks, self.crash_after = tasks, crash_after
        self.rounds, self.fail_process = rounds, fail_process
        self.created = []  # self.round at each create_input_files() call
        self.seen = []  # (round, {task: output}) at each process_output_files() call

    def create_input_files(self):
        self.created.append(self.round)
        for i, (name, value) in enumerate(self.tasks.items()):
            if i == self.crash_after:
                raise Crash(f"the master died after writing {i} inputs")
            self.create_input_file(name, str(value))

    def process_output_files(self, outputs):
        self.seen.append((self.round, {t: p.read_text() for t, p in outputs.items()}))
        if self.fail_process:
            raise Crash("process_output_files raised")
        return self.round < self.rounds


TASKS = {"a": 1, "b": 2, "c": 3, "d": 4}
SQUARES = {t: str(v * v) for t, v in TASKS.items()}


def worker(root, clock):
    return Squarer(root, worker_id=1, clock=clock, lease_secs=10)


def stepping(root):
    """A fake clock during whose sleeps a worker takes a step (it works while the master waits)."""
    clock = FakeClock()
    w = worker(root, clock)
    clock.on_sleep = lambda secs: w.step()
    return clock


def files(directory, pattern="*"):
    """{name: (inode, mtime_ns, bytes)} of the files in ``directory``: what a rewrite would change
    (a directory, a shard's, is (inode, None, None))."""
    found = {}
    for path in sorted(directory.glob(pattern)):
        st = path.stat()
        found[path.name] = (st.st_ino, None, None) if path.is_dir() else \
            (st.st_ino, st.st_mtime_ns, path.read_bytes())
    return found


def round_files(root, number=1, pattern="*"):
    """files() of round ``number``'s own directory and of each of its shards (as ``shard-.../name``)."""
    top = round_dir(root, number)
    found = files(top, pattern)
    for shard in sorted(top.glob("shard-*")):
        found.update({f"{shard.name}/{name}": facts for name, facts in files(shard, pattern).items()})
    return found


def crashed_waiting(root, tasks=TASKS, **options):
    """A first master that sealed round 1, then died at its first pause."""
    with pytest.raises(Crash):
        Tasks(root, tasks, clock=FakeClock(on_sleep=crash), **options).run()
    assert (round_dir(root) / "SEALED").exists() and not (round_dir(root) / "CLOSED").exists()


def test_resume_with_every_task_pending_rewrites_nothing(tmp_path):
    crashed_waiting(tmp_path)
    inputs = files(tasks_dir(tmp_path), "*.in")
    assert len(inputs) == 4
    sealed = files(round_dir(tmp_path), "SEALED")
    restarted = Tasks(tmp_path, TASKS, clock=stepping(tmp_path))
    summary = restarted.run()
    assert (summary.done, summary.rounds, restarted.created) == (4, 1, [1])
    assert restarted.seen == [(1, SQUARES)]
    assert files(tasks_dir(tmp_path), "*.in") == inputs and files(round_dir(tmp_path), "SEALED") == sealed
    assert not round_dir(tmp_path, 2).exists()
    assert (round_dir(tmp_path) / "CLOSED").read_text() == "next: STOP\n"


def test_resume_with_part_finished_reruns_nothing(tmp_path):
    crashed_waiting(tmp_path)
    early = worker(tmp_path, FakeClock())
    assert [early.step(), early.step()] == [fsmw.StepResult.WORKED] * 2  # two tasks done before the restart
    finished = files(tasks_dir(tmp_path), "*.out")
    claims = files(tasks_dir(tmp_path), "*.claim.*")
    assert len(finished) == 2 and len(claims) == 2
    restarted = Tasks(tmp_path, TASKS, clock=stepping(tmp_path))
    assert restarted.run().done == 4 and restarted.seen == [(1, SQUARES)]
    after = files(tasks_dir(tmp_path), "*.out")
    assert {name: after[name] for name in finished} == finished  # the same files, untouched
    finished_tasks = [name[:-len(".out")] for name in finished]
    assert sorted(n for n in os.listdir(tasks_dir(tmp_path)) if n.split(".")[0] in finished_tasks
                  and ".claim." in n) == sorted(claims)  # no new claim on a finished task
    assert not list(tasks_dir(tmp_path).glob("*.dup.*")) and not list(tasks_dir(tmp_path).glob("*.err.*"))


def test_the_digest_path_reads_no_input(tmp_path):
    crashed_waiting(tmp_path)

    class Counting(FileSystem):
        reads = []

        def open(self, path, flags, mode=0o777):
            if str(path).endswith(".in"):
                self.reads.append(path)
            return os.open(path, flags, mode)

    fs = Counting()
    restarted = Tasks(tmp_path, TASKS, fs=fs, clock=FakeClock(on_sleep=crash))
    with pytest.raises(Crash):  # it resumed and waits: no input was opened to get there
        restarted.run()
    assert restarted.round == 1 and fs.reads == []


def test_a_master_that_died_writing_inputs_is_resumed_and_the_round_sealed(tmp_path):
    with pytest.raises(Crash):
        Tasks(tmp_path, TASKS, crash_after=2).run()
    assert sorted(os.listdir(round_dir(tmp_path))) == ["shard-000000"]  # not sealed
    assert sorted(os.listdir(tasks_dir(tmp_path))) == ["a.in", "b.in"]
    assert worker(tmp_path, FakeClock()).step() is fsmw.StepResult.WORKED  # workers start meanwhile
    before = files(tasks_dir(tmp_path), "[ab].*")
    restarted = Tasks(tmp_path, TASKS, clock=stepping(tmp_path))
    assert restarted.run().done == 4 and restarted.seen == [(1, SQUARES)]
    assert {n: v for n, v in files(tasks_dir(tmp_path), "[ab].*").items() if n in before} == before
    fresh = Tasks(tmp_path / "fresh", TASKS)
    fresh.store.check(create=True)
    fresh.begin_round()
    sealed = (round_dir(tmp_path) / "SEALED").read_text()
    assert sealed == (round_dir(tmp_path / "fresh") / "SEALED").read_text()  # tasks: 4 and the same digest
    assert not [n for n in os.listdir(round_dir(tmp_path)) + os.listdir(tasks_dir(tmp_path))
                if n.startswith(".tmp.")]


def test_a_differing_restart_after_dying_mid_write_writes_nothing(tmp_path):
    with pytest.raises(Crash):
        Tasks(tmp_path, TASKS, crash_after=2).run()
    before = round_files(tmp_path, pattern=".*") | round_files(tmp_path)
    with pytest.raises(RoundMismatch, match=r"other input bytes: b \(1 bytes in the store, 2 now\)"):
        Tasks(tmp_path, dict(TASKS, b=20)).run()
    assert round_files(tmp_path, pattern=".*") | round_files(tmp_path) == before  # no temp, no input


@pytest.mark.parametrize("changed, message", [
    (dict(TASKS, e=5), r"1 new task\(s\) \(e\)"),
    ({t: v for t, v in TASKS.items() if t != "c"}, r"1 task\(s\) in the store no longer yielded \(c\)"),
    (dict(TASKS, b=7), r"other input bytes: b \(1 bytes in the store, 1 now\)"),
    (dict(TASKS, d=44), r"other input bytes: d \(1 bytes in the store, 2 now\)"),
], ids=["extra", "missing", "same-size-other-bytes", "other-size"])
def test_different_tasks_fail_with_the_difference_and_leave_the_store_alone(tmp_path, changed, message):
    crashed_waiting(tmp_path)
    early = worker(tmp_path, FakeClock())
    assert early.step() is fsmw.StepResult.WORKED
    before = round_files(tmp_path, pattern=".*") | round_files(tmp_path)
    with pytest.raises(fsmw.StoreError, match=message) as caught:
        Tasks(tmp_path, changed).run()
    assert isinstance(caught.value, RoundMismatch)
    assert "round-000001 was left open by an earlier master" in str(caught.value)
    assert "Nothing was changed" in str(caught.value) and "abandon_open_round" in str(caught.value)
    assert round_files(tmp_path, pattern=".*") | round_files(tmp_path) == before
    assert sorted(p.name for p in tmp_path.glob("round-*")) == ["round-000001"]
    assert not (tmp_path / "STOP").exists()


def test_many_differences_name_the_first_few(tmp_path):
    tasks = {f"t{i:02d}": i for i in range(20)}
    crashed_waiting(tmp_path, tasks)
    with pytest.raises(RoundMismatch) as caught:
        Tasks(tmp_path, {t: v + 100 for t, v in tasks.items()}).run()
    named = [t for t in tasks if f"{t} (" in str(caught.value)]
    assert len(named) == SHOWN and ", ..." in str(caught.value)


def test_the_tasks_may_come_in_another_order(tmp_path):
    crashed_waiting(tmp_path)
    restarted = Tasks(tmp_path, dict(reversed(list(TASKS.items()))), clock=stepping(tmp_path))
    assert restarted.run().done == 4 and restarted.round == 1


def test_abandon_open_round_closes_it_and_starts_a_new_round(tmp_path):
    crashed_waiting(tmp_path)
    restarted = Tasks(tmp_path, {"e": 5}, clock=stepping(tmp_path), abandon_open_round=True)
    assert restarted.run().done == 1 and restarted.seen == [(2, {"e": "25"})]
    assert (round_dir(tmp_path) / "CLOSED").read_text() == "abandoned; next: round-000002\n"
    assert not list(tasks_dir(tmp_path).glob("*.out"))  # the abandoned round was not worked on


def test_an_exception_in_process_output_files_leaves_the_round_resumable(tmp_path):
    first = Tasks(tmp_path, TASKS, clock=stepping(tmp_path), fail_process=True)
    with pytest.raises(Crash, match="process_output_files raised"):
        first.run()
    assert first.seen == [(1, SQUARES)]
    assert not (round_dir(tmp_path) / "CLOSED").exists() and not (tmp_path / "STOP").exists()
    outputs, claims = files(tasks_dir(tmp_path), "*.out"), files(tasks_dir(tmp_path), "*.claim.*")
    assert len(outputs) == 4
    restarted = Tasks(tmp_path, TASKS, clock=FakeClock(on_sleep=crash))  # no worker, and it never waits
    summary = restarted.run()
    assert restarted.seen == [(1, SQUARES)] and summary.done == 4 and summary.rounds == 1
    assert files(tasks_dir(tmp_path), "*.out") == outputs  # nothing was run again
    assert files(tasks_dir(tmp_path), "*.claim.*") == claims
    assert (round_dir(tmp_path) / "CLOSED").read_text() == "next: STOP\n" and (tmp_path / "STOP").exists()


def test_a_restart_in_round_two_resumes_round_two_and_leaves_round_one(tmp_path):
    clock = stepping(tmp_path)
    step = clock.on_sleep
    first = Tasks(tmp_path, TASKS, rounds=2, clock=clock)
    clock.on_sleep = lambda secs: crash(secs) if first.round == 2 else step(secs)
    with pytest.raises(Crash):
        first.run()
    assert first.seen == [(1, SQUARES)]
    round_one = round_files(tmp_path)
    assert len([name for name in round_one if name.endswith(".out")]) == 4
    assert round_one["CLOSED"][2] == b"next: round-000002\n"
    restarted = Tasks(tmp_path, TASKS, rounds=2, clock=stepping(tmp_path))
    summary = restarted.run()
    assert restarted.created == [2] and restarted.seen == [(2, SQUARES)] and summary.rounds == 1
    assert round_files(tmp_path) == round_one
    assert sorted(p.name for p in tmp_path.glob("round-*")) == ["round-000001", "round-000002"]


def test_dying_while_writing_the_next_round_resumes_it_and_closes_the_one_before(tmp_path):
    class Second(Tasks):
        def create_input_files(self):
            self.crash_after = 1 if self.round == 2 and self.tasks is TASKS else None
            super().create_input_files()

    with pytest.raises(Crash):
        Second(tmp_path, TASKS, rounds=2, clock=stepping(tmp_path)).run()
    assert not (round_dir(tmp_path) / "CLOSED").exists()  # round 1 done, round 2 half written
    restarted = Second(tmp_path, dict(TASKS), rounds=2, clock=stepping(tmp_path))
    assert restarted.run().done == 4 and restarted.seen == [(2, SQUARES)]
    assert (round_dir(tmp_path) / "CLOSED").read_text() == "next: round-000002\n"
    assert (round_dir(tmp_path, 2) / "SEALED").read_text().startswith("tasks: 4\ndigest: ")


def test_a_round_sealed_without_a_digest_is_compared_input_by_input(tmp_path):
    make_round(tmp_path, TASKS)  # sealed "tasks: 4", as an older fsmw wrote it
    with pytest.raises(RoundMismatch, match=r"other input bytes: c"):
        Tasks(tmp_path, dict(TASKS, c=9)).run()
    restarted = Tasks(tmp_path, TASKS, clock=stepping(tmp_path))
    assert restarted.run().done == 4 and restarted.round == 1
    assert (round_dir(tmp_path) / "SEALED").read_text() == "tasks: 4\n"  # left as it was
