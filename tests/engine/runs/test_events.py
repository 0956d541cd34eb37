"""The time left the dashboard shows: the newest estimate, counted down by the time since it was made."""

import pytest

from engine.runs.events import SetupStep, StepEnded, time_left


def test_time_left_counts_down_from_the_newest_estimate():
    events = [
        SetupStep(name="probe", fraction=0.1, run_eta_s=None, t=100.0),
        SetupStep(name="probe", fraction=0.5, run_eta_s=60.0, t=110.0),
        StepEnded(eta_s=30.0, t=130.0),
    ]
    assert time_left(events, 105.0) is None  # no estimate yet
    assert time_left(events, 120.0) == 50.0  # 60 s said at t=110, 10 s ago
    # the training step's estimate is newer and 20 s later: it takes over (damped by a 4 s time constant)
    assert time_left(events, 131.0) == pytest.approx(29.0, abs=0.1)
    assert time_left(events, 500.0) == 1.0  # overdue: never zero or negative while the run goes on


def test_a_stalled_step_is_estimated_again_from_its_own_pace_once_the_countdown_runs_out():
    events = [
        SetupStep(name="cache features of augmented views", fraction=0.1, eta_s=None, run_eta_s=None, t=100.0),
        SetupStep(name="cache features of augmented views", fraction=0.3, eta_s=20.0, run_eta_s=30.0, t=110.0),
    ]
    assert time_left(events, 120.0) == 20.0  # still counting down the estimate made at t=110
    # at t=160 the countdown is over and the step has reported nothing since 30%: 0.2 of it in 60 s, 0.7 to go,
    # plus the 10 s the estimate counted after the step
    assert time_left(events, 160.0) == pytest.approx(0.7 / (0.2 / 60.0) + 10.0)
    assert time_left(events, 220.0) > time_left(events, 160.0)  # the longer it stalls, the longer it looks


def test_one_slow_step_does_not_swing_the_time_left_and_a_lasting_change_is_followed():
    """Under load one step reads ten times slower: the time left moves by a little; when every step says so for a
    minute, the time left follows it."""
    steady = [StepEnded(eta_s=1000.0 - t, t=float(t)) for t in range(0, 100)]
    spike = steady + [StepEnded(eta_s=9000.0, t=100.0)]
    assert time_left(steady, 100.0) == pytest.approx(901.0, rel=0.01)
    assert time_left(spike, 100.5) < 1.1 * 900.0  # a tenfold estimate, one step: not even a tenth more
    lasting = spike + [StepEnded(eta_s=9000.0 - (t - 100), t=float(t)) for t in range(101, 220)]
    assert time_left(lasting, 220.0) == pytest.approx(8880.0, rel=0.05)  # two minutes on: the new pace holds
