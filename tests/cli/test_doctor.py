"""``fsmw doctor``: real probes on a real directory, with real child processes.

A second host is simulated by a result file carrying another host name, with
that host's lock held by a separate process (as a real doctor's holder would),
or by a second doctor run whose host name is patched.  Every test checks that
no child process is left behind and that only the result file stays.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import sys
import time
from pathlib import Path

import pytest

from fsmw.cli import doctor as _doctor
from fsmw.cli.doctor.races import TRIALS
from fsmw._core.owner import host_name, safe_host
from fsmw.cli import main
from support.procs import wait_for

# A doctor on host "alpha": the host name is set before fsmw is imported, so its
# FileSystem seam (FileSystem.hostname) answers "alpha"; no fsmw name is patched.
ALPHA = ("import socket, sys; socket.gethostname = lambda: 'alpha'; "
         "from fsmw.cli import main; sys.exit(main(sys.argv[1:]))")
HOLDER = ("import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644); "
          "fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB); print('ready', flush=True); time.sleep(60)")


def _children() -> list:
    me = str(os.getpid())
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if fields[1] == me and fields[0] != "Z":
            found.append(stat.parent.name)
    return found


@pytest.fixture(autouse=True)
def no_children_left():
    yield
    assert _children() == [], "a doctor child process outlived the test"


@pytest.fixture
def store(tmp_path) -> Path:
    path = tmp_path / "store"
    path.mkdir()
    return path


def fs_now(store: Path) -> float:
    probe = store / "clock-probe"
    probe.touch()
    return probe.stat().st_mtime


def other_host(store: Path, host: str, clock_offset: float, hold_secs: float) -> Path:
    """Write the result file of a doctor run on ``host`` now holding its lock."""
    (store / ".fsmw-doctor").mkdir(exist_ok=True)
    now = fs_now(store)
    result = {"fsmw_doctor": 1, "host": host, "measured_at": now,
              "hold": {"lock": f"lock.{host}", "seconds": hold_secs, "from": now - 1,
                       "until": now + hold_secs},
              "probes": {"clock": {"offset_s": clock_offset, "uncertainty_s": 0.01},
                         "fcntl": {"result": "working"}, "fcntl_hosts": {"result": "not checked"},
                         "new_file": {"max_ms": 3.0}, "utime": {"max_ms": 900.0}}}
    (store / ".fsmw-doctor" / f"{host}.json").write_text(json.dumps(result))
    return store / ".fsmw-doctor" / f"lock.{host}"


def test_local_store_everything_works(store):
    started = time.monotonic()
    report = _doctor.run_doctor(store, hold=0.5)
    took = time.monotonic() - started
    probes = report["probes"]
    assert all(probes[key]["ok"] for key in _doctor.ESSENTIAL), probes
    assert probes["fcntl"]["result"] == "working"
    assert probes["fcntl_hosts"]["result"] == "not checked"
    assert probes["mtime"]["unit"] in ("ns", "us", "ms", "s") and probes["mtime"]["step_s"] > 0
    assert abs(probes["clock"]["offset_s"]) < 1.0  # one host: file system and host share a clock
    assert probes["new_file"]["missed"] == 0 and probes["new_file"]["trials"] == TRIALS
    assert probes["utime"]["missed"] == 0
    assert [row["host"] for row in report["hosts"]] == [host_name()]
    assert report["recommendations"]["lease_secs"] == 120.0
    assert report["recommendations"]["take_lockfile_existence_as_lock"] is True
    assert os.listdir(store / ".fsmw-doctor") == [f"{safe_host()}.json"]
    assert took < 15, f"doctor took {took:.1f} s"


def test_json_output_is_one_object(store, capsys):
    assert main(["doctor", str(store), "--json", "--hold", "0.3"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report["probes"]) == set(_doctor.TITLES)
    assert all("summary" in probe for probe in report["probes"].values())
    assert report["host"] == host_name() and report["hold"]["lock"] == f"lock.{safe_host()}"
    assert report["hold"]["until"] - report["hold"]["from"] == pytest.approx(0.3)
    assert set(report["recommendations"]) >= {"lease_secs", "worker_idle_sleep_secs",
                                              "take_lockfile_existence_as_lock", "why"}
    stored = json.loads((store / ".fsmw-doctor" / f"{safe_host()}.json").read_text())
    assert stored["probes"] == report["probes"] and "hosts" not in stored


def test_text_output_names_every_probe(store, capsys):
    assert main(["doctor", str(store), "--hold", "0"]) == 0
    out = capsys.readouterr().out
    for title in _doctor.TITLES.values():
        assert title in out
    assert "recommended options" in out and "lease_secs=120" in out


@pytest.mark.parametrize("kind", ["missing", "file"])
def test_unusable_store_is_one_line_naming_it(tmp_path, capsys, kind):
    store = tmp_path / "no-store"
    if kind == "file":
        store.write_text("")
    assert main(["doctor", str(store)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(store) in err
    assert err.startswith("fsmw doctor: ") and ("does not exist" if kind == "missing" else "not a") in err
    assert not (tmp_path / "no-store" / ".fsmw-doctor").exists()


@pytest.mark.parametrize("code", [errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP])
def test_locks_not_supported(tmp_path, monkeypatch, code):
    def lockf(fd, cmd, *args):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(fcntl, "lockf", lockf)
    found = _doctor.probe_fcntl(tmp_path)
    assert found["result"] == "not supported" and errno.errorcode[code] in found["summary"]
    mount = _doctor.mount_of(tmp_path)
    assert _doctor.cross_summary({}, mount, found)["result"] == "not checked"


def test_nfs_nolock_mount_is_local_only():
    mount = {"point": "/shared", "fstype": "nfs", "options": "rw,vers=3,nolock,proto=tcp"}
    assert _doctor.cross_summary({}, mount, {"result": "working"})["result"] == "local-only"


def test_a_clobbering_link_fails_the_doctor(store, monkeypatch, capsys):
    real_link = os.link

    def clobbering_link(src, dst, **kw):  # what fsmw must never trust: link that replaces
        try:
            real_link(src, dst, **kw)
        except FileExistsError:
            os.unlink(dst)
            real_link(src, dst, **kw)

    monkeypatch.setattr(os, "link", clobbering_link)
    assert main(["doctor", str(store), "--hold", "0"]) == 1
    captured = capsys.readouterr()
    assert "BROKEN" in captured.out
    line, = captured.err.splitlines()
    assert "link no-clobber" in line and str(store) in line and "cannot run safely" in line


@pytest.mark.time_limit(30)
def test_lock_held_by_another_host_is_refused(store, procs):
    lock = other_host(store, "otherhost", clock_offset=600.0, hold_secs=30)
    holder = procs.start("holder", [sys.executable, "-c", HOLDER, str(lock)])
    holder.wait_log("ready", 10)
    report = _doctor.run_doctor(store, hold=0.3)
    assert report["probes"]["fcntl_hosts"]["result"] == "working"
    assert report["probes"]["fcntl_hosts"]["hosts"] == {"otherhost": "working"}
    rows = {row["host"]: row for row in report["hosts"]}
    assert set(rows) == {host_name(), "otherhost"}
    assert rows["otherhost"]["clock_flag"] and not rows[host_name()]["clock_flag"]
    rec = report["recommendations"]
    assert rec["take_lockfile_existence_as_lock"] is False
    assert rec["lease_secs"] == 120.0 and rec["worker_idle_sleep_secs"] == 10.0
    assert lock.exists(), "the doctor removed another host's lock file"


def test_lock_taken_while_another_host_holds_it_is_local_only(store, capsys):
    other_host(store, "nolockhost", clock_offset=0.0, hold_secs=30)  # nobody holds the lock here
    (store / ".fsmw-doctor" / "lock.nolockhost").touch()
    report = _doctor.run_doctor(store, hold=0)
    assert report["probes"]["fcntl_hosts"]["result"] == "local-only"
    assert "nolockhost" in report["probes"]["fcntl_hosts"]["summary"]
    assert report["recommendations"]["take_lockfile_existence_as_lock"] is True


def test_slow_visibility_elsewhere_raises_the_lease(store):
    result = other_host(store, "slowhost", clock_offset=0.0, hold_secs=-5).with_name("slowhost.json")
    facts = json.loads(result.read_text())
    facts["probes"]["utime"]["max_ms"] = 30_000.0
    result.write_text(json.dumps(facts))
    report = _doctor.run_doctor(store, hold=0)
    assert report["recommendations"]["lease_secs"] == 300.0
    assert report["recommendations"]["worker_idle_sleep_secs"] == 30.0
    assert report["probes"]["fcntl_hosts"]["result"] == "not checked"  # its hold has ended


@pytest.mark.time_limit(40)
def test_two_doctors_at_once_check_each_others_locks(store, procs, capsys):
    alpha = procs.start("alpha", [sys.executable, "-c", ALPHA, "doctor", str(store), "--hold", "6"])
    wait_for(lambda: (store / ".fsmw-doctor" / "alpha.json").exists(), 10, "alpha's result file")
    assert main(["doctor", str(store), "--hold", "3"]) == 0
    out = capsys.readouterr().out
    assert "working: refused the lock alpha held" in out
    assert out.count("alpha") >= 2  # the comparison lists it
    assert alpha.wait(20) == 0, alpha.tail()
    first = json.loads((store / ".fsmw-doctor" / "alpha.json").read_text())
    assert first["probes"]["fcntl_hosts"]["hosts"] == {host_name(): "working"}, alpha.tail()
    assert sorted(os.listdir(store / ".fsmw-doctor")) == sorted(["alpha.json", f"{safe_host()}.json"])
