"""One pass of the worker and of the master, on a real directory, with a fake clock."""

import json
import os

import pytest

import fsmw
from fsmw import StepResult, StoreError, TaskNameError
from fsmw._core.atomic import write_replace
from fsmw._core.pacing import Pace
from fsmw._worker.claimer import Claimer
from fsmw._worker.pending import PendingTasks
from support.clock import FakeClock
from support.stores import Squarer, foreign_claim, listing, make_round, round_dir, tasks_dir


@pytest.fixture
def clock():
    return FakeClock()


def worker(root, clock, **options):
    options.setdefault("lease_secs", 10)
    return Squarer(root, worker_id=1, clock=clock, **options)


def test_step_claims_runs_and_publishes_one_task(tmp_path, clock):
    store = make_round(tmp_path, {"a": 3})
    assert worker(tmp_path, clock).step() is StepResult.WORKED
    assert store.task_file(1, "a", "out").read_text() == "9"
    assert listing(store) == ["a.claim.1", "a.in", "a.out"]  # the claim stays as a record
    assert sorted(n for n in os.listdir(round_dir(tmp_path)) if not n.startswith(".journal.")) == \
        ["SEALED", "shard-000000"]
    (journal,) = [n for n in os.listdir(store.round_dir(1)) if n.startswith(".journal.")]
    line = json.loads((store.round_dir(1) / journal).read_text())
    assert (line["task"], line["attempt"], line["kind"], line["outcome"]) == ("a", 1, "claim", "published")
    assert line["claimed"] <= line["ended"] and line["worker_id"] == 1


def test_claimed_task_is_left_alone_while_its_lease_is_live(tmp_path, clock):
    store = make_round(tmp_path, {"a": 3})
    claim = foreign_claim(store, "a")
    w = worker(tmp_path, clock, lockfile_timeout_threshold=0)  # and no backup copy (see test_backups)
    for _ in range(5):
        assert w.step() is StepResult.IDLE
        clock.advance(9)
        os.utime(claim, ns=(os.stat(claim).st_mtime_ns + 10**9,) * 2)  # heartbeat moves
    assert not store.task_file(1, "a", "out").exists()


def test_stale_claim_is_broken_recorded_and_redone(tmp_path, clock):
    store = make_round(tmp_path, {"a": 3})
    stale = foreign_claim(store, "a")
    w = worker(tmp_path, clock)
    assert w.step() is StepResult.IDLE
    clock.advance(10)
    assert w.step() is StepResult.WORKED
    assert store.task_file(1, "a", "out").read_text() == "9"
    assert "broken_by" in stale.read_text()  # broken: a record of the break took its name
    assert store.task_file(1, "a", "claim", 2).exists()
    record = store.task_file(1, "a", "err", 1).read_text()
    assert "lease expired" in record and "elsewhere" in record


def test_busy_worker_redoes_a_dead_claim_before_pending_work(tmp_path, clock):
    store = make_round(tmp_path, {"dead": 1, **{f"p{i}": i for i in range(20)}})
    stale = foreign_claim(store, "dead")
    w = worker(tmp_path, clock)
    assert w.step() is StepResult.WORKED  # observes the claim, then takes pending work
    clock.advance(10)
    assert w.step() is StepResult.WORKED
    assert store.task_file(1, "dead", "out").read_text() == "1"
    assert "broken_by" in stale.read_text()
    assert len([n for n in os.listdir(tasks_dir(tmp_path)) if n.endswith(".out")]) == 2


def test_a_claim_being_broken_is_not_broken_again_by_a_second_judge(tmp_path, clock):
    store = make_round(tmp_path, {"t": 1})
    foreign_claim(store, "t", gen=1)  # a dead holder
    second_judge = worker(tmp_path, clock)
    assert second_judge.step() is StepResult.IDLE
    clock.advance(11)
    # The moment inside the first judge's break: it has won generation 2 and
    # recorded the lost attempt, but not yet removed generation 1.
    foreign_claim(store, "t", gen=2)
    write_replace(store.task_file(1, "t", "err", 1), b"error: lease expired\n")
    assert second_judge.step() is StepResult.IDLE
    assert listing(store) == ["t.claim.1", "t.claim.2", "t.err.1", "t.in"]
    assert sorted(os.listdir(round_dir(tmp_path))) == ["SEALED", "shard-000000"]


def test_a_generation_used_since_the_listing_is_skipped(tmp_path, clock):
    store = make_round(tmp_path, {"t": 1})
    shard = store.round(1).shard(0)
    pending = PendingTasks(shard, clock, pace=Pace(0.0, clock.now), reuse_secs=5.0, max_attempts=3)
    claimer = Claimer(shard, {"host": "here", "worker_id": 1}, clock)
    pending.begin_pass()  # lists: no claim and no error, so t is pending at generation 1
    # Attempt 1 came and went: its claim stays, with its error record.
    foreign_claim(store, "t", gen=1)
    write_replace(store.task_file(1, "t", "err", 1), b"error: boom\n")
    view = pending.begin_pass()  # the next pass reuses that listing: it is fresh
    assert view.next_gen("t") == 1
    claim = pending.next_claim(claimer)  # generation 1 is lost, a new listing shows why
    assert claim is not None and (claim.task, claim.gen) == ("t", 2)
    assert listing(store) == ["t.claim.1", "t.claim.2", "t.err.1", "t.in"]
    assert store.task_file(1, "t", "claim", 1).read_text().startswith("host: elsewhere")
    claim.release()
    claimer.close()


def test_free_fcntl_lock_means_dead_holder_when_existence_is_not_the_lock(tmp_path, clock):
    store = make_round(tmp_path, {"a": 3})
    foreign_claim(store, "a")  # no process holds its lock
    w = worker(tmp_path, clock, take_lockfile_existence_as_lock=False)
    assert w.step() is StepResult.IDLE  # grace for a claim still being locked
    clock.advance(1)
    assert w.step() is StepResult.WORKED
    assert store.task_file(1, "a", "out").exists()


def test_overdue_task_gets_one_backup_near_the_end_of_the_round(tmp_path, clock):
    store = make_round(tmp_path, {"a": 3, "b": 4})
    write_replace(store.task_file(1, "b", "out"), b"16")
    original = foreign_claim(store, "a")
    w = worker(tmp_path, clock, process_secs=5, lockfile_timeout_threshold=0.5)
    assert w.step() is StepResult.IDLE
    clock.advance(5)
    os.utime(original)  # the original is alive
    assert w.step() is StepResult.WORKED
    assert original.exists()
    assert store.task_file(1, "a", "out").read_text() == "9"


def test_no_backup_before_the_round_is_sealed(tmp_path, clock):
    store = make_round(tmp_path, {"a": 3}, sealed=False)
    original = foreign_claim(store, "a")
    w = worker(tmp_path, clock, process_secs=5, lockfile_timeout_threshold=1.0)
    w.step()
    clock.advance(6)
    os.utime(original)
    assert w.step() is StepResult.IDLE


def test_failing_task_is_retried_then_marked_failed(tmp_path, clock):
    store = make_round(tmp_path, {"bad": 7, "good": 2})
    w = worker(tmp_path, clock, max_attempts=2)
    w.fail = (7,)
    for _ in range(5):
        w.step()
    errors = sorted(n for n in os.listdir(tasks_dir(tmp_path)) if ".err." in n)
    assert errors == ["bad.err.1", "bad.err.2"]
    record = store.task_file(1, "bad", "err", 1).read_text()
    for line in ("task: bad", "attempt: 1", "worker_id: 1", "host: ", "duration_secs: ",
                 "error: ValueError: no square for 7", "Traceback"):
        assert line in record
    assert "ValueError: no square for 7" in store.task_file(1, "bad", "failed").read_text()
    assert store.task_file(1, "good", "out").read_text() == "4"


def test_missing_output_is_a_failed_attempt(tmp_path, clock):
    class Lazy(fsmw.Worker):
        def process_file(self, input_path, output_path):
            pass

    store = make_round(tmp_path, {"a": 1})
    Lazy(tmp_path, clock=clock, max_attempts=1).step()
    assert "without writing output_path" in store.task_file(1, "a", "failed").read_text()


def test_result_of_a_round_closed_meanwhile_is_discarded_as_late(tmp_path, clock):
    class Late(fsmw.Worker):
        def process_file(self, input_path, output_path):
            output_path.write_text("late")
            # Meanwhile the master closes the round and sweeps its temp files.
            output_path.unlink()
            write_replace(input_path.parent.parent / "CLOSED", b"next: STOP\n")  # round-k/shard-j/

    make_round(tmp_path, {"a": 1})
    assert Late(tmp_path, clock=clock).step() is StepResult.WORKED
    names = os.listdir(tasks_dir(tmp_path))
    assert not [n for n in names if ".err." in n or n.endswith(".out")]
    assert len([n for n in names if ".dup." in n]) == 1


def test_holder_whose_claim_was_broken_never_publishes(tmp_path, clock):
    class Hung(fsmw.Worker):
        def process_file(self, input_path, output_path):
            output_path.write_text("stale result")
            # While we "hang", someone breaks our claim and takes generation 2.
            (claim,) = input_path.parent.glob("a.claim.1")
            claim.unlink()
            (input_path.parent / "a.claim.2").write_text("host: elsewhere\n")

    make_round(tmp_path, {"a": 1})
    assert Hung(tmp_path, clock=clock).step() is StepResult.WORKED
    names = sorted(os.listdir(tasks_dir(tmp_path)))
    assert "a.out" not in names and "a.claim.2" in names
    assert len([n for n in names if ".dup." in n]) == 1
    assert not [n for n in names if n.startswith(".tmp.")]


def test_poisoned_task_whose_marker_is_missing_gets_marked(tmp_path, clock):
    store = make_round(tmp_path, {"a": 1})
    for gen in (1, 2, 3):
        write_replace(store.task_file(1, "a", "err", gen), b"error: boom\n")
    assert worker(tmp_path, clock).step() is StepResult.IDLE
    assert "boom" in store.task_file(1, "a", "failed").read_text()


def test_worker_follows_closed_rounds_and_stops_on_stop(tmp_path, clock):
    store = make_round(tmp_path, {"a": 1})
    write_replace(store.marker(1, "CLOSED"), b"next: round-000002\n")
    make_round(tmp_path, {"a": 5}, number=2)
    w = worker(tmp_path, clock)
    while not store.task_file(2, "a", "out").exists():
        assert w.step() in (StepResult.WORKED, StepResult.IDLE)
    assert store.task_file(2, "a", "out").read_text() == "25"
    assert not store.task_file(1, "a", "out").exists()
    write_replace(store.marker(2, "CLOSED"), b"next: STOP\n")
    write_replace(store.stop_file, b"")
    clock.advance(1.0)  # a worker looks for STOP and CLOSED once a second
    assert w.step() is StepResult.STOP


def test_foreign_files_are_ignored(tmp_path, clock):
    store = make_round(tmp_path, {"a": 2})
    for name in ("notes.txt", "a.in.bak", "x.claim.y", ".nfs0001"):
        (store.round_dir(1) / name).write_text("junk")
        (tasks_dir(tmp_path) / name).write_text("junk")
    (tmp_path / "README").write_text("junk")
    w = worker(tmp_path, clock)
    assert w.step() is StepResult.WORKED
    assert w.step() is StepResult.IDLE


class Squares(fsmw.Master):
    def create_input_files(self):
        for i in range(3):
            self.create_input_file(f"n{i}", str(i))


def test_master_rejects_bad_and_duplicate_names(tmp_path):
    class Bad(fsmw.Master):
        def create_input_files(self):
            self.create_input_file("x", "1")
            self.create_input_file(self.bad, "1")

    for bad, message in (("x", "used twice"), ("a/b", "'/'"), ("x.out", "suffixes")):
        m = Bad(tmp_path / bad.replace("/", "_"))
        m.bad = bad
        with pytest.raises(TaskNameError, match=message):
            m.run()


def test_master_step_reports_done_failed_and_missing(tmp_path):
    m = Squares(tmp_path / "s", max_attempts=1)
    m.store.check(create=True)
    m.begin_round(1)
    assert m.step() is False
    write_replace(m.store.task_file(1, "n0", "out"), b"0")
    write_replace(m.store.task_file(1, "n1", "out"), b"1")
    write_replace(m.store.task_file(1, "n2", "err", 1), b"error: boom\n")
    assert m.step() is True
    assert m.store.task_file(1, "n2", "failed").exists()


def test_a_master_told_to_abandon_sends_workers_of_the_open_round_onward(tmp_path, clock):
    make_round(tmp_path, {"old": 1})  # an earlier master died in round 1
    w = worker(tmp_path, clock)
    assert w.step() is StepResult.WORKED  # the worker is in round 1

    class Once(fsmw.Master):
        def create_input_files(self):
            self.create_input_file("new", "6")

    m = Once(tmp_path, clock=FakeClock(on_sleep=lambda secs: (clock.advance(secs), w.step())),  # meanwhile
             abandon_open_round=True)  # its tasks differ: resuming would fail (see test_resume.py)
    summary = m.run()
    assert summary.done == 1 and m.round == 2
    assert (tmp_path / "round-000001" / "CLOSED").read_text().startswith("abandoned")
    assert (tasks_dir(tmp_path, 2) / "new.out").read_text() == "36"


def test_master_refuses_missing_parent_and_finished_store(tmp_path):
    with pytest.raises(StoreError, match="parent directory .* does not exist"):
        Squares(tmp_path / "no" / "store").run()
    (tmp_path / "done").mkdir()
    (tmp_path / "done" / "STOP").write_text("")
    with pytest.raises(StoreError, match="finished run"):
        Squares(tmp_path / "done").run()
    (tmp_path / "file").write_text("")
    with pytest.raises(StoreError, match="not a directory"):
        Squares(tmp_path / "file").run()


@pytest.mark.parametrize("option, value", [("lease_secs", 0), ("max_attempts", 0),
                                           ("lockfile_timeout_threshold", 2),
                                           ("worker_idle_sleep_secs", float("nan")),
                                           ("process_secs", -1), ("max_attempts", 1.5)])
def test_bad_options_are_rejected(tmp_path, option, value):
    with pytest.raises(ValueError, match=option):
        Squarer(tmp_path, **{option: value})
