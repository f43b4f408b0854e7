"""Options: validated in one place, passed as keywords or as a typed Options."""

from __future__ import annotations

import re

import pytest

import fsmw


class Nothing(fsmw.Worker):
    def process_file(self, input_path, output_path):
        output_path.write_text("")


class NoTasks(fsmw.Master):
    def create_input_files(self):
        pass


@pytest.mark.parametrize("role", [NoTasks, lambda store, **kw: Nothing(store, 1, **kw)])
def test_constructors_take_a_typed_options_and_keywords_override_it(tmp_path, role):
    options = fsmw.Options(lease_secs=30.0, max_attempts=5)
    made = role(tmp_path, options=options, max_attempts=2)
    assert made.options == fsmw.Options(lease_secs=30.0, max_attempts=2)
    assert role(tmp_path, options=options).options is options
    assert role(tmp_path, lease_secs=7.0).options == fsmw.Options(lease_secs=7.0)


def test_a_wrong_options_object_or_option_is_refused_clearly(tmp_path):
    with pytest.raises(TypeError, match="fsmw.Options"):
        NoTasks(tmp_path, options={"lease_secs": 3})
    with pytest.raises(TypeError):
        NoTasks(tmp_path, no_such_option=1)
    with pytest.raises(ValueError, match="lease_secs must be a positive number"):
        NoTasks(tmp_path, options=fsmw.Options(), lease_secs=-1)


def test_begin_round_makes_the_next_round_with_its_inputs_sealed(tmp_path):
    class Two(NoTasks):
        def create_input_files(self):
            self.create_input_file("a", "1")
            self.create_input_file("b", "2")

    master = Two(tmp_path / "store", progress=False)
    master.store.check(create=True)
    assert master.begin_round() == 1 and master.begin_round() == 2
    assert sorted(p.name for p in master.store.round_dir(2).iterdir()) == ["SEALED", "shard-000000"]
    assert sorted(p.name for p in (master.store.round_dir(2) / "shard-000000").iterdir()) == ["a.in", "b.in"]
    sealed = master.store.marker(2, "SEALED").read_text()
    assert re.fullmatch(r"tasks: 2\ndigest: sha256-sum [0-9a-f]{64}\n", sealed)
    with pytest.raises(fsmw.StoreError, match="already exists"):
        master.begin_round(1)


def test_begin_round_fills_shards_of_shard_size_inputs_in_the_order_they_are_written(tmp_path):
    class Five(NoTasks):
        def create_input_files(self):
            for name in "edcba":
                self.create_input_file(name, name)

    master = Five(tmp_path / "store", progress=False, shard_size=2)
    master.store.check(create=True)
    assert master.begin_round() == 1
    rd = master.store.round_dir(1)
    assert sorted(p.name for p in rd.iterdir()) == ["SEALED", "shard-000000", "shard-000001", "shard-000002"]
    shards = [sorted(p.name for p in (rd / f"shard-{i:06d}").iterdir()) for i in range(3)]
    assert shards == [["d.in", "e.in"], ["b.in", "c.in"], ["a.in"]]
    assert master.store.marker(1, "SEALED").read_text().startswith("tasks: 5\n")


@pytest.mark.parametrize("bad", [0, -1, 2.0, True, "3"])
def test_shard_size_must_be_a_positive_integer(bad):
    with pytest.raises(ValueError, match="shard_size must be a positive integer"):
        fsmw.Options(shard_size=bad)


def test_a_bad_tmp_folder_is_refused_when_the_worker_is_made(tmp_path):
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    for folder, words in ((tmp_path / "nowhere", "does not exist"), (a_file, "is not a directory")):
        with pytest.raises(ValueError, match=f"tmp_folder {folder} {words}"):
            Nothing(tmp_path, 1, use_tmp=True, tmp_folder=str(folder))
    Nothing(tmp_path, 1, use_tmp=False, tmp_folder=str(tmp_path / "nowhere"))  # unused: no check
    Nothing(tmp_path, 1, use_tmp=True, tmp_folder=str(tmp_path))


def test_a_clock_owns_its_sleep(tmp_path):
    with pytest.raises(ValueError, match="a Clock owns its sleep"):
        NoTasks(tmp_path, clock=fsmw.Clock(), sleep=lambda secs: None)
