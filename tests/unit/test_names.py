"""Task names: what is accepted, what is rejected, and how store names parse."""

import pytest

from fsmw import TaskNameError
from fsmw._core import layout as names


@pytest.mark.parametrize("name", ["a", "n42", "problem-000001", "with space inside", "ünï.cödé",
                                  "x.claim", "x.in.bak", "_x", "SEALED", "a.b.c"])
def test_valid_names_round_trip_through_every_file_kind(name):
    assert names.check_task_name(name) == name
    for kind, gen in [(names.IN, None), (names.OUT, None), (names.FAILED, None),
                      (names.CLAIM, 3), (names.ERR, 12)]:
        assert names.parse(names.file_name(name, kind, gen)) == (name, kind, gen)
    assert names.parse(f"{name}.dup.ab12") == (name, names.DUP, None)


@pytest.mark.parametrize("name, why", [
    ("", "empty"), ("a/b", "'/'"), ("a\0b", "NUL"), (".", "starts with '.'"),
    ("..", "starts with '.'"), (".hidden", "starts with '.'"), ("a\nb", "control"),
    (" a", "white space"), ("x.in", "suffixes"), ("x.out", "suffixes"),
    ("x.failed", "suffixes"), ("x.claim.1", "suffixes"), ("x.err.7", "suffixes"),
    ("x.dup.ff", "suffixes"), ("é" * 120, "bytes long"),
])
def test_invalid_names_are_rejected_with_the_reason(name, why):
    with pytest.raises(TaskNameError, match="invalid task name") as info:
        names.check_task_name(name)
    assert why in str(info.value)
    assert isinstance(info.value, ValueError)


def test_name_limit_leaves_room_for_the_longest_suffix():
    longest = "a" * (255 - names.SUFFIX_ROOM)
    names.check_task_name(longest)
    with pytest.raises(TaskNameError):
        names.check_task_name(longest + "a")
    assert len(names.file_name(longest, names.CLAIM, 10**9).encode()) <= 255


def test_non_string_names_are_rejected():
    with pytest.raises(TaskNameError, match="not a str"):
        names.check_task_name(42)


@pytest.mark.parametrize("name", [".tmp.host.1.abc", "notes.txt", "x.claim.abc", "x.err.",
                                  ".in", "STOP", "x.claim.１"])
def test_temps_markers_and_foreign_names_do_not_parse(name):
    assert names.parse(name) is None


def test_round_names():
    assert names.round_name(7) == "round-000007"
    assert names.round_number("round-000007") == 7
    for bad in ("round-7", "round-00000x", "rounds-000001", "round-0000001"):
        assert names.round_number(bad) is None


def test_shard_names():
    assert names.shard_name(0) == "shard-000000" and names.shard_name(42) == "shard-000042"
    assert names.shard_index("shard-000042") == 42 and names.shard_index(names.shard_name(999999)) == 999999
    for bad in ("shard-42", "shard-00004x", "shards-000001", "shard-0000001", "shard-００００１２",
                "round-000001", "x.in"):
        assert names.shard_index(bad) is None
    assert names.parse("shard-000001") is None  # a shard directory is no task's file


def test_shard_and_round_numbers_past_six_digits_read_back():
    from fsmw._core import layout
    for index in (0, 7, 999_999, 1_000_000, 12_345_678):
        assert layout.shard_index(layout.shard_name(index)) == index
        assert layout.round_number(layout.round_name(index)) == index
    for name in ("shard-12345", "shard-0000001", "shard-00000x", "shard-", "round-0123456"):
        assert layout.shard_index(name) is None and layout.round_number(name) is None
