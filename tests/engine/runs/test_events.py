"""The time left the dashboard shows: the newest estimate, counted down by the time since it was made."""

import pytest

from engine.runs.events import SetupStep, StepEnded, time_left


def test_time_left_counts_down_from_the_newest_estimate():
    events = [
        SetupStep(name="probe", fraction=0.1, run_eta_s=None, t=100.0).to_dict(),
        SetupStep(name="probe", fraction=0.5, run_eta_s=60.0, t=110.0).to_dict(),
        StepEnded(eta_s=30.0, t=130.0).to_dict(),
    ]
    assert time_left(events, 105.0) is None  # no estimate yet
    assert time_left(events, 120.0) == 50.0  # 60 s said at t=110, 10 s ago
    assert time_left(events, 131.0) == 29.0  # the training step's estimate is newer
    assert time_left(events, 500.0) == 1.0  # overdue: never zero or negative while the run goes on


def test_a_stalled_step_is_estimated_again_from_its_own_pace_once_the_countdown_runs_out():
    events = [
        SetupStep(
            name="cache features of augmented views", fraction=0.1, eta_s=None, run_eta_s=None, t=100.0
        ).to_dict(),
        SetupStep(
            name="cache features of augmented views", fraction=0.3, eta_s=20.0, run_eta_s=30.0, t=110.0
        ).to_dict(),
    ]
    assert time_left(events, 120.0) == 20.0  # still counting down the estimate made at t=110
    # at t=160 the countdown is over and the step has reported nothing since 30%: 0.2 of it in 60 s, 0.7 to go,
    # plus the 10 s the estimate counted after the step
    assert time_left(events, 160.0) == pytest.approx(0.7 / (0.2 / 60.0) + 10.0)
    assert time_left(events, 220.0) > time_left(events, 160.0)  # the longer it stalls, the longer it looks
