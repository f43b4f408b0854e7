"""Fixtures of the multi-process tests: a hard time limit and child reaping."""

from __future__ import annotations

import signal

import pytest

from support.procs import Procs

DEFAULT_TIME_LIMIT_SECS = 60.0


class TimeLimitExceeded(Exception):
    """A test ran past its hard time limit."""


def pytest_configure(config):
    config.addinivalue_line("markers", "time_limit(secs): hard time limit of one test "
                            f"(default {DEFAULT_TIME_LIMIT_SECS:.0f} s)")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


@pytest.fixture(autouse=True)
def hard_time_limit(request):
    """Fail the test (then reap its children) if it runs past its time limit."""
    marker = request.node.get_closest_marker("time_limit")
    secs = float(marker.args[0]) if marker else DEFAULT_TIME_LIMIT_SECS

    def expired(signum, frame):
        raise TimeLimitExceeded(f"{request.node.name} ran past its hard limit of {secs:.0f} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, secs)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def procs(request, tmp_path, hard_time_limit):
    """A :class:`Procs` whose children are all killed and reaped after the test."""
    children = Procs(tmp_path)
    try:
        yield children
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)  # the cleanup below has its own bounds
        children.close()
        report = getattr(request.node, "report_call", None)
        if report is not None and report.failed:
            print(children.report())
