"""The run's setup steps (`SetupProgress`): each step's time left from its own pace, the run's from the plan's
deadline or from a planned step's pace, reports thinned to one per interval, nothing written without a run, and a
stop asked for raised where the engine checks."""

import pytest

from engine.runs.events import Cancelled
from engine.train.setup_steps import SetupProgress


class Log:
    def __init__(self):
        self.events = []

    def append(self, e) -> None:
        self.events.append(e)


def test_the_steps_pace_is_measured_from_its_first_report(clock):
    """A step that spends 8 s building a model and then 1 s per tenth: 9 s left at 10%, not 72 s."""
    log = Log()
    report = SetupProgress(log, min_interval=0.0, clock=clock)
    report("probe", 0.0)
    clock.now = 8.0
    report("probe", 0.05)  # the first batch: no pace yet
    assert log.events[-1].eta_s is None
    clock.now = 8.5
    report("probe", 0.1)
    assert log.events[-1].eta_s == pytest.approx(9.0)


def test_the_steps_pace_follows_its_recent_progress(clock):
    """Slow at first (0.1 to 0.3 in 4 s), then 0.2 a second: at 0.7, 1.5 s left, not the 3 s of the average pace."""
    log = Log()
    report = SetupProgress(log, min_interval=0.0, clock=clock)
    for t, f in [(0.0, 0.0), (1.0, 0.1), (5.0, 0.3), (6.0, 0.5), (7.0, 0.7)]:
        clock.now = t
        report("extract", f)
    assert log.events[-1].eta_s == pytest.approx(1.5)


def test_the_run_time_left_follows_the_deadline_or_the_steps_pace(clock):
    log = Log()
    report = SetupProgress(log, min_interval=0.0, clock=clock)
    report.expect(100.0)
    report("probe", 0.0)
    clock.now = 1.0
    report("probe", 0.1)
    clock.now = 9.0
    report("probe", 0.5)  # 10 s more for the probe at 0.4 in 8 s, but the plan says 91 s for the run
    assert log.events[-1].eta_s == pytest.approx(10.0)
    assert log.events[-1].run_eta_s == pytest.approx(91.0)


def test_after_a_planned_step_the_rest_is_scaled_by_its_pace(clock):
    log = Log()
    report = SetupProgress(log, min_interval=0.0, clock=clock)
    report.expect(500.0)  # superseded: from this step on, the step's pace decides
    report.expect_after("validate", rest_s=30.0, planned_s=10.0)
    report("validate", 0.0)
    clock.now = 0.5
    report("validate", 0.1)
    clock.now = 2.5
    report("validate", 0.5)  # 5 s in all, half the plan's 10 s: the 30 s after it take 15 s
    assert log.events[-1].eta_s == pytest.approx(2.5)
    assert log.events[-1].run_eta_s == pytest.approx(2.5 + 15.0)
    clock.now = 5.0
    report("validate", 1.0)
    assert log.events[-1].run_eta_s == pytest.approx(15.0)
    clock.now = 8.0
    report("score", 0.0)  # the step is over: what is left is a deadline, counted from its end
    assert log.events[-1].run_eta_s == pytest.approx(12.0)


def test_only_the_forward_passes_after_a_planned_step_follow_its_pace(clock):
    log = Log()
    report = SetupProgress(log, min_interval=0.0, clock=clock)
    report.expect_after("validate", rest_s=30.0, planned_s=10.0, fixed_s=100.0)  # 100 s of epochs: as planned
    report("validate", 0.0)
    clock.now = 0.5
    report("validate", 0.1)
    clock.now = 2.5
    report("validate", 0.5)  # half the plan's pace: the 30 s of passes take 15 s, the epochs still 100 s
    assert log.events[-1].run_eta_s == pytest.approx(2.5 + 15.0 + 100.0)


def test_an_unplanned_step_adds_the_rest_unscaled(clock):
    log = Log()
    report = SetupProgress(log, min_interval=0.0, clock=clock)
    report.expect_after("choose", rest_s=20.0)
    report("choose", 0.0)
    clock.now = 1.0
    report("choose", 0.25)
    clock.now = 5.0
    report("choose", 0.75)
    assert log.events[-1].run_eta_s == pytest.approx(2.0 + 20.0)


def test_reports_closer_than_the_interval_are_dropped_but_a_steps_start_and_end_never(clock):
    log = Log()
    report = SetupProgress(log, min_interval=1.0, clock=clock)
    report("cache", 0.0)
    clock.now = 0.5
    report("cache", 0.2)  # 0.5 s after the last: dropped
    clock.now = 1.5
    report("cache", 0.4)
    clock.now = 1.6
    report("cache", 1.0)  # the end is always written
    report("score", 0.0)  # and a new step's start
    assert [(e.name, e.fraction) for e in log.events] == [
        ("cache", 0.0),
        ("cache", 0.4),
        ("cache", 1.0),
        ("score", 0.0),
    ]
    assert log.events[2].eta_s == 0.0


def test_fractions_are_kept_between_zero_and_one(clock):
    log = Log()
    report = SetupProgress(log, min_interval=0.0, clock=clock)
    report("cache", 1.2)
    report("score", -0.1)
    assert [e.fraction for e in log.events] == [1.0, 0.0]


def test_without_a_run_nothing_is_written_and_the_cancel_check_still_runs(clock):
    """A process other than rank 0 and the LR finder report progress into nothing, and still stop when asked."""

    def cancel() -> None:
        raise Cancelled("stop asked")

    report = SetupProgress(None, cancel=cancel, clock=clock)
    report("probe", 0.5)  # no run: no error, no event
    with pytest.raises(Cancelled):
        report.check_cancel()
    SetupProgress(Log()).check_cancel()  # no cancel check given: nothing happens
