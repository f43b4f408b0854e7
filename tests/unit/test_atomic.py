"""Two-stage creation: unique temps, fsync, rename or no-clobber link."""

import os
import stat

import pytest
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


class Counting(FileSystem):
    """The real file system, counting the calls publish makes."""

    def __init__(self, noreplace=True):
        self.calls = []
        self.noreplace_ok = noreplace

    def rename_noreplace(self, src, dst):
        self.calls.append("rename_noreplace")
        return FileSystem.rename_noreplace(src, dst)

    def link(self, src, dst):
        self.calls.append("link")
        return os.link(src, dst)

    def unlink(self, path):
        self.calls.append("unlink")
        return os.unlink(path)


def test_a_local_publish_is_one_rename_that_never_clobbers(tmp_path):
    fs = Counting()
    first = _atomic.write_temp(tmp_path, b"first", fs=fs)
    second = _atomic.write_temp(tmp_path, b"second", fs=fs)
    assert _atomic.publish(first, tmp_path / "t.out", fs, local=True)
    assert fs.calls == ["rename_noreplace"]  # no link, no unlink
    assert not _atomic.publish(second, tmp_path / "t.out", fs, local=True)
    assert (tmp_path / "t.out").read_bytes() == b"first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.out"]  # both temps gone


def test_where_rename_noreplace_is_missing_publish_links_from_then_on(tmp_path):
    class Without(Counting):
        def rename_noreplace(self, src, dst):
            self.calls.append("rename_noreplace")
            raise OSError(22, "Invalid argument")  # what NFS and old kernels answer

    fs = Without()
    for name in ("a", "b"):
        assert _atomic.publish(_atomic.write_temp(tmp_path, b"x", fs=fs), tmp_path / f"{name}.out", fs,
                               local=True)
    assert fs.calls == ["rename_noreplace", "link", "unlink", "link", "unlink"]
    assert not fs.noreplace_ok
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.out", "b.out"]


def test_a_shared_publish_links_and_never_renames(tmp_path):
    fs = Counting()
    assert _atomic.publish(_atomic.write_temp(tmp_path, b"x", fs=fs), tmp_path / "t.out", fs)
    assert fs.calls == ["link", "unlink"]


@pytest.mark.parametrize("text", ["/a/b/c.in", "/a/b/.tmp.x", "/x.in", "rel/y.in", "y.in", "/a//b/c",
                                  "/a/b/", "./z/t.out"])
def test_the_paths_handed_to_process_file_are_the_paths_named(text):
    from fsmw._core.paths import as_path
    for _ in range(2):  # the second time from the cached directory
        made = as_path(text)
        assert made == Path(text) and str(made) == str(Path(text)) and type(made) is type(Path(text))
        assert made.parent == Path(text).parent and made.name == Path(text).name
