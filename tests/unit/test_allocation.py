"""A worker's allocation: walltime_secs, else what squeue says is left, else unlimited."""

from __future__ import annotations

import pytest

from fsmw._worker.allocation import Allocation, parse_slurm_duration
from support.clock import FakeClock


class Squeue(FakeClock):
    """A clock standing still at 100 s whose helper processes answer like squeue."""

    def __init__(self, answer):
        super().__init__(100.0)
        self.answer, self.asked = answer, []

    def run_helper(self, argv, timeout=30.0):
        self.asked.append(argv)
        return self.answer


@pytest.mark.parametrize("text, secs", [("1-02:03:04", 93784.0), ("02:03:04", 7384.0), ("03:04", 184.0),
                                        ("4", 4.0), ("UNLIMITED", None), ("", None), ("1-x:00", None)])
def test_slurm_durations(text, secs):
    assert parse_slurm_duration(text) == secs


def test_the_slurm_job_time_left_is_asked_once_through_the_helper_seam():
    clock = Squeue("0:10:00\n")
    allocation = Allocation(None, clock, environ={"SLURM_JOB_ID": "77"})
    assert clock.asked == [["squeue", "-h", "-j", "77", "-o", "%L"]]
    assert allocation.time_left() == 600.0
    assert allocation.too_short(lambda: 601.0) and not allocation.too_short(lambda: 599.0)


def test_walltime_secs_wins_and_no_job_means_unlimited():
    clock = Squeue("0:10:00")
    assert Allocation(50.0, clock, environ={"SLURM_JOB_ID": "77"}).time_left() == 50.0
    assert Allocation(None, clock, environ={}).time_left() is None and clock.asked == []
    assert Allocation(None, Squeue(None), environ={"SLURM_JOB_ID": "77"}).too_short(lambda: 1e9) is False
