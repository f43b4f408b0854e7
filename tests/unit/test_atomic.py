"""Two-stage creation: unique temps, fsync, rename or no-clobber link."""

import os
import stat
from pathlib import Path

from fsmw._core import atomic as _atomic
from fsmw._core.layout import is_temp
from fsmw._core.system import FileSystem


def test_temp_paths_are_unique_and_name_host_and_pid(tmp_path):
    paths = {_atomic.temp_path(tmp_path) for _ in range(1000)}
    assert len(paths) == 1000
    name = Path(next(iter(paths))).name
    assert is_temp(name)
    assert f".{os.getpid()}." in name


def test_write_replace_creates_and_replaces_whole_files(tmp_path):
    final = tmp_path / "f"
    _atomic.write_replace(final, b"one")
    _atomic.write_replace(final, b"two")
    assert final.read_bytes() == b"two"
    assert os.listdir(tmp_path) == ["f"]


def test_publish_never_clobbers_and_always_removes_the_temp(tmp_path):
    final = tmp_path / "x.out"
    assert _atomic.write_new(final, b"first") is True
    assert _atomic.write_new(final, b"second") is False
    assert final.read_bytes() == b"first"
    assert os.listdir(tmp_path) == ["x.out"]


def test_files_honour_the_umask(tmp_path):
    old = os.umask(0o077)
    try:
        _atomic.write_replace(tmp_path / "private", b"x")
        _atomic.write_new(tmp_path / "private2", b"x")
    finally:
        os.umask(old)
    for name in ("private", "private2"):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o600
    _atomic.write_replace(tmp_path / "default", b"x")
    assert not os.stat(tmp_path / "default").st_mode & stat.S_IWOTH


def test_a_failed_write_leaves_no_temp(tmp_path):
    class BrokenFsync(FileSystem):
        @staticmethod
        def fsync(fd):
            raise OSError(5, "I/O error")

    try:
        _atomic.write_replace(tmp_path / "f", b"data", fs=BrokenFsync())
    except OSError:
        pass
    else:
        raise AssertionError("fsync error was swallowed")
    assert os.listdir(tmp_path) == []


def test_link_reported_existing_but_made_by_us_counts_as_won(tmp_path):
    """NFS can answer EEXIST to a retransmitted LINK that did succeed."""
    class Retransmitting(FileSystem):
        @staticmethod
        def link(src, dst):
            os.link(src, dst)
            raise FileExistsError(17, "File exists")

    assert _atomic.write_new(tmp_path / "x.out", b"mine", fs=Retransmitting()) is True
    assert (tmp_path / "x.out").read_bytes() == b"mine"
