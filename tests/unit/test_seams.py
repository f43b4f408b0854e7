"""Every file-system call a master and a worker make to the store goes through their ``fs``.

An audit hook (PEP 578) sees each ``open``, ``os.listdir``, ``os.rename``,
``os.link``, ``os.remove``, ``os.mkdir`` and ``os.utime`` the interpreter
makes; the test's file system marks the calls it forwards, and the user's
``process_file`` marks its own.  Any other call that touches the store is a
call that bypassed the seam, and a simulation would miss it.
"""

from __future__ import annotations

import sys
import threading

import fsmw
from fsmw._core.system import FileSystem

EVENTS = {"open", "os.listdir", "os.scandir", "os.rename", "os.link", "os.remove", "os.mkdir",
          "os.utime", "os.chmod", "os.truncate"}
_state = threading.local()
_watch = {"root": None, "escaped": []}


def _hook(event, args):
    root = _watch["root"]
    if root is None or event not in EVENTS or getattr(_state, "inside", False):
        return
    if any(isinstance(a, (str, bytes)) and str(a if isinstance(a, str) else a.decode(errors="replace"))
           .startswith(root) for a in args) or any(hasattr(a, "__fspath__") and str(a).startswith(root)
                                                    for a in args):
        _watch["escaped"].append((event, args[:2]))


sys.addaudithook(_hook)


class Marked(FileSystem):
    """The real file system; each call it forwards is marked as made through the seam."""

    def __getattribute__(self, name):
        attr = super().__getattribute__(name)
        if not callable(attr) or name.startswith("__"):
            return attr

        def call(*args, **kwargs):
            _state.inside = True
            try:
                return attr(*args, **kwargs)
            finally:
                _state.inside = False
        return call


class Squares(fsmw.Master):
    def create_input_files(self):
        for i in range(4):
            self.create_input_file(f"t{i}", str(i))


class Squarer(fsmw.Worker):
    def process_file(self, input_path, output_path):
        _state.inside = True  # the user's own calls are theirs to make
        try:
            output_path.write_text(str(int(input_path.read_text()) ** 2))
        finally:
            _state.inside = False


def test_master_and_worker_reach_the_store_only_through_their_file_system(tmp_path):
    root = tmp_path / "store"
    fs = Marked()
    master = Squares(root, fs=fs, progress=False, shard_size=3)  # two shards: the walk over them too
    worker = Squarer(root, 1, fs=fs)
    _watch["root"], _watch["escaped"] = str(root), []
    try:
        master.store.check(create=True)
        master.begin_round()
        while worker.step() is fsmw.StepResult.WORKED:
            pass
        assert master.step() is True
    finally:
        _watch["root"] = None
    outputs = sorted(str(p.relative_to(root / "round-000001")) for p in root.glob("round-000001/*/*.out"))
    assert outputs == ["shard-000000/t0.out", "shard-000000/t1.out", "shard-000000/t2.out",
                       "shard-000001/t3.out"]
    assert _watch["escaped"] == []
