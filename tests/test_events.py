"""The time left the dashboard shows: the newest estimate, counted down by the time since it was made."""
from engine.runs.events import SetupStep, StepEnded, time_left


def test_time_left_counts_down_from_the_newest_estimate():
    events = [SetupStep(name="probe", fraction=0.1, run_eta_s=None, t=100.0).to_dict(),
              SetupStep(name="probe", fraction=0.5, run_eta_s=60.0, t=110.0).to_dict(),
              StepEnded(eta_s=30.0, t=130.0).to_dict()]
    assert time_left(events, 105.0) is None  # no estimate yet
    assert time_left(events, 120.0) == 50.0  # 60 s said at t=110, 10 s ago
    assert time_left(events, 131.0) == 29.0  # the training step's estimate is newer
    assert time_left(events, 500.0) == 1.0  # overdue: never zero or negative while the run goes on
