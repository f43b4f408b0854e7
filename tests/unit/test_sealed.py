"""Sealed payloads, the run's key, and the encoders of calls and commands (no processes)."""

from __future__ import annotations

import base64
import functools
import io
import os
import pickle
import sys

import pytest

from fsmw._core.records import failed_record, format_record
from fsmw._tasks import calls, commands, sealed
from fsmw._tasks.commandrun import CommandMaster, read_tasks
from support import calls as user

KEY = b"k" * 64


def test_a_sealed_payload_opens_only_unchanged_under_its_key_round_and_task():
    data = sealed.seal(KEY, sealed.CALL, (1, "t1"), b"body")
    assert sealed.open_sealed(KEY, data, "f", (1, "t1")) == ("call", b"body")
    for key, scope, changed in ((b"x" * 64, (1, "t1"), data), (KEY, (1, "t1"), data + b"!"),
                                (KEY, (1, "t2"), data), (KEY, (2, "t1"), data),
                                (KEY, (1, "t1"), data.replace(b"fsmw-call", b"fsmw-result"))):
        with pytest.raises(sealed.PayloadRejected, match="HMAC does not match.*nothing was run"):
            sealed.open_sealed(key, changed, "f", scope)
    with pytest.raises(sealed.PayloadRejected, match="f is not an fsmw payload"):
        sealed.open_sealed(KEY, pickle.dumps(1), "f", (1, "t1"))


def test_a_result_of_another_task_or_round_is_refused():
    out = sealed.seal(KEY, sealed.RESULT, (1, "t1"), pickle.dumps(5))
    assert calls.load_result(KEY, (1, "t1"), out, "f") == 5
    with pytest.raises(sealed.PayloadRejected, match="round 1 task t2"):
        calls.load_result(KEY, (1, "t2"), out, "f")
    with pytest.raises(sealed.PayloadRejected, match="replayed"):
        calls.load_result(KEY, (2, "t1"), out, "f")
    call = sealed.seal(KEY, sealed.CALL, (1, "t1"), pickle.dumps(5))
    with pytest.raises(sealed.PayloadRejected, match="holds a call, not the result"):
        calls.load_result(KEY, (1, "t1"), call, "f")


def test_the_key_file_is_made_0600_and_trusted_only_when_private_and_ours(tmp_path, monkeypatch):
    monkeypatch.delenv(sealed.KEY_ENV, raising=False)
    old = os.umask(0)
    try:
        key = sealed.load_key(str(tmp_path), create=True)
    finally:
        os.umask(old)
    path = tmp_path / "KEY"
    assert path.stat().st_mode & 0o777 == 0o600 and len(key) == 64
    assert sealed.load_key(str(tmp_path), create=True) == key, "an existing key is kept"
    path.chmod(0o640)
    with pytest.raises(sealed.KeyProblem, match="mode 0640"):
        sealed.load_key(str(tmp_path))
    path.chmod(0o600)
    os.link(path, tmp_path / "linked")
    with pytest.raises(sealed.KeyProblem, match="2 links"):
        sealed.load_key(str(tmp_path))
    (tmp_path / "linked").unlink()
    if os.geteuid() == 0:
        os.chown(path, 12345, -1)
        with pytest.raises(sealed.KeyProblem, match="owned by uid 12345"):
            sealed.load_key(str(tmp_path))
        os.chown(path, 0, -1)
    path.rename(tmp_path / "real")
    path.symlink_to(tmp_path / "real")
    with pytest.raises(sealed.KeyProblem, match="cannot open"):
        sealed.load_key(str(tmp_path))
    path.unlink()
    with pytest.raises(sealed.KeyProblem, match="does not exist"):
        sealed.load_key(str(tmp_path))
    monkeypatch.setenv(sealed.KEY_ENV, "e" * 40)
    assert sealed.load_key(str(tmp_path)) == b"e" * 40
    monkeypatch.setenv(sealed.KEY_ENV, "hunter2")
    with pytest.raises(sealed.KeyProblem, match="too short to be a key"):
        sealed.load_key(str(tmp_path))


def test_a_call_runs_only_functions_that_travel_by_reference(monkeypatch):
    body = calls.dump_call(user.add, (2,), {"y": 3})
    assert calls.load_result(KEY, (1, "c1"), calls.run_call(KEY, (1, "c1"), body, "f"), "o") == 5
    with pytest.raises(calls.NotImportable, match="top level of an importable module"):
        calls.dump_call(lambda: 1, (), {})
    main_fn = type(user.square)(user.square.__code__, {}, "in_main")
    main_fn.__module__, main_fn.__qualname__ = "__main__", "in_main"
    monkeypatch.setattr(sys.modules["__main__"], "in_main", main_fn, raising=False)  # as a script's
    with pytest.raises(calls.NotImportable, match="defined in __main__"):
        calls.dump_call(main_fn, (), {})
    with pytest.raises(calls.NotImportable, match="defined in __main__"):
        calls.dump_call(functools.partial(main_fn, 1), (), {})
    assert calls.dump_call(user.add, ("__main__",), {}), "the string __main__ is no function"
    gone = pickle.dumps((user.add, (1,), {})).replace(b"support.calls", b"support.callz")  # same length
    with pytest.raises(calls.NotImportable, match="must be importable here"):
        calls.run_call(KEY, (1, "c3"), gone, "f")


def test_system_exit_and_an_unpicklable_result_fail_the_call_not_the_worker():
    with pytest.raises(calls.CallRaised, match="SystemExit: 2"):
        calls.run_call(KEY, (1, "c1"), pickle.dumps((sys.exit, (2,), {})), "f")
    with pytest.raises(calls.CallRaised, match="TypeError"):
        calls.run_call(KEY, (1, "c1"), pickle.dumps((user.numbers, (2,), {})), "f")


def test_a_raised_exception_comes_back_sealed_or_as_task_failed():
    with pytest.raises(calls.CallRaised) as raised:
        calls.run_call(KEY, (1, "c1"), pickle.dumps((user.even_only, (3,), {})), "f")
    facts = dict(raised.value.fsmw_record, host="h1", worker_id="2", pid="9", attempt="3")
    record = failed_record(3, format_record(facts, raised.value.fsmw_body))
    exc = calls.exception_from_failure(KEY, (1, "c1"), record, "w")
    assert isinstance(exc, user.Odd) and exc.value == 3
    assert "raise Odd(x)" in exc.__cause__.text and "host h1 (worker 2, pid 9), attempt 3 of 3" in \
        exc.__cause__.text
    forged = dict(facts, exception=base64.b64encode(sealed.seal(b"z" * 64, sealed.EXCEPTION, (1, "c1"),
                                                                pickle.dumps(ValueError()))).decode())
    exc = calls.exception_from_failure(KEY, (1, "c1"), failed_record(3, format_record(forged)), "w")
    assert isinstance(exc, calls.TaskFailed) and "Odd: 3 is odd" in str(exc), \
        "an exception not sealed under the key is never unpickled"


def test_substitute_replaces_every_placeholder_or_appends_the_line():
    assert commands.substitute(["cp", "{}", "{}.bak"], "a b") == ["cp", "a b", "a b.bak"]
    assert commands.substitute(["echo"], "x") == ["echo", "x"]
    with pytest.raises(commands.BadCommand):
        commands.substitute([], "x")


def test_a_command_output_keeps_stdout_and_stderr_apart_under_the_seal():
    out = commands.run_command(KEY, (1, "t"), ["sh", "-c", "printf 'a\\n\\nb'; printf e >&2"])
    got = commands.load_output(KEY, (1, "t"), out, "f")
    assert (got.stdout, got.stderr) == (b"a\n\nb", b"e")
    with pytest.raises(commands.CommandFailed, match="exited with code 3; stderr ends:\nno"):
        commands.run_command(KEY, (1, "t"), ["sh", "-c", "echo no >&2; exit 3"])
    with pytest.raises(commands.CommandFailed, match="cannot run '/no/such'"):
        commands.run_command(KEY, (1, "t"), ["/no/such"])


def test_read_tasks_skips_blank_lines_and_keeps_their_numbers(tmp_path):
    f = tmp_path / "t"
    f.write_bytes(b"a\r\n\n  \nb c\n")
    assert read_tasks(str(f)) == [(1, "a"), (4, "b c")]
    f.write_bytes(b"\xff\n")
    with pytest.raises(commands.BadCommand, match=f"cannot read the tasks file {f}"):
        read_tasks(str(f))
    with pytest.raises(commands.BadCommand, match="cannot read"):
        read_tasks(str(tmp_path / "none"))


def test_a_failure_without_a_loadable_exception_is_task_failed():
    plain = failed_record(3, format_record(dict(host="h", attempt=3, error="worker died (SIGKILL)")))
    exc = calls.exception_from_failure(KEY, (1, "c1"), plain, "w")
    assert isinstance(exc, calls.TaskFailed) and "failed after 3 attempts: worker died" in str(exc)
    body = pickle.dumps(user.Odd(1)).replace(b"support.calls", b"support.callz")  # not importable here
    sealed_exc = sealed.seal(KEY, sealed.EXCEPTION, (1, "c1"), body)
    facts = dict(error="Odd: 1 is odd", exception=base64.b64encode(sealed_exc).decode())
    exc = calls.exception_from_failure(KEY, (1, "c1"), failed_record(1, format_record(facts)), "w")
    assert isinstance(exc, calls.TaskFailed) and "Odd: 1 is odd" in str(exc)


def test_a_command_runs_with_no_stdin_here_and_a_signal_fails_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = commands.load_output(KEY, (1, "t"), commands.run_command(KEY, (1, "t"), ["sh", "-c", "cat; pwd"]),
                               "f")
    assert out.stdout == f"{tmp_path}\n".encode(), "stdin is /dev/null, the directory the worker's"
    with pytest.raises(commands.CommandFailed, match="sh was killed by signal 9"):
        commands.run_command(KEY, (1, "t"), ["sh", "-c", "kill -9 $$"])


def test_fsmw_run_holds_an_output_that_waits_as_its_path_and_checks_it_again(tmp_path):
    out, err = io.BytesIO(), io.StringIO()
    master = CommandMaster(str(tmp_path / "s"), [(1, "a"), (2, "b"), (3, "c")], ["echo"], out, err)
    key = master.key()
    master.round = 1
    files = {}
    for n, word in ((2, "b"), (3, "c")):
        files[n] = tmp_path / f"o{n}"
        files[n].write_bytes(commands.run_command(key, (1, f"line-00000{n}"), ["echo", word]))
        master.task_done(f"line-00000{n}", files[n].read_bytes(), str(files[n]))
    assert master._ended[1][0] == str(files[2]) and out.getvalue() == b"", "a path, not the bytes"
    files[3].write_bytes(files[2].read_bytes())  # swapped while it waited: checked again
    first = commands.run_command(key, (1, "line-000001"), ["echo", "a"])
    master.task_done("line-000001", first, "o1")
    assert out.getvalue() == b"a\nb\n"
    assert master.failed == ["line-000003"] and "HMAC does not match" in err.getvalue()
