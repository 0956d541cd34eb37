"""SetupProgress: a step's own time left from its pace, and the whole run's from the plan, corrected by that pace."""

import pytest

from engine.train import progress
from engine.train.progress import SetupProgress


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Log:
    def __init__(self):
        self.events = []

    def append(self, e) -> None:
        self.events.append(e)


@pytest.fixture
def clock(monkeypatch):
    c = Clock()
    monkeypatch.setattr(progress.time, "perf_counter", c)
    return c


def test_the_steps_pace_is_measured_from_its_first_report(clock):
    """A step that spends 8 s building a model and then 1 s per tenth: 9 s left at 10%, not 72 s."""
    log = Log()
    report = SetupProgress(log, min_interval=0.0)
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
    report = SetupProgress(log, min_interval=0.0)
    for t, f in [(0.0, 0.0), (1.0, 0.1), (5.0, 0.3), (6.0, 0.5), (7.0, 0.7)]:
        clock.now = t
        report("extract", f)
    assert log.events[-1].eta_s == pytest.approx(1.5)


def test_the_run_time_left_follows_the_deadline_or_the_steps_pace(clock):
    log = Log()
    report = SetupProgress(log, min_interval=0.0)
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
    report = SetupProgress(log, min_interval=0.0)
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
    report = SetupProgress(log, min_interval=0.0)
    report.expect_after("validate", rest_s=30.0, planned_s=10.0, fixed_s=100.0)  # 100 s of epochs: as planned
    report("validate", 0.0)
    clock.now = 0.5
    report("validate", 0.1)
    clock.now = 2.5
    report("validate", 0.5)  # half the plan's pace: the 30 s of passes take 15 s, the epochs still 100 s
    assert log.events[-1].run_eta_s == pytest.approx(2.5 + 15.0 + 100.0)


def test_an_unplanned_step_adds_the_rest_unscaled(clock):
    log = Log()
    report = SetupProgress(log, min_interval=0.0)
    report.expect_after("choose", rest_s=20.0)
    report("choose", 0.0)
    clock.now = 1.0
    report("choose", 0.25)
    clock.now = 5.0
    report("choose", 0.75)
    assert log.events[-1].run_eta_s == pytest.approx(2.0 + 20.0)


def test_a_step_scales_its_parts_into_its_share_and_routes_them_through_itself():
    from engine.progress import QUIET, Reporter, Step

    seen = []
    whole = Step(Reporter(lambda name, f: seen.append((name, round(f, 3)))), "probe x", 0.5, 1.0)
    whole(0.0)
    features = whole.sub(0.0, 0.9)
    features(0.5)
    features.sub(0.5, 1.0)(1.0)
    whole.sub(0.9, 1.0)(0.5)
    assert seen == [("probe x", 0.5), ("probe x", 0.725), ("probe x", 0.95), ("probe x", 0.975)]
    QUIET("anything", 0.5)  # the do-nothing default
    QUIET.step("x").sub(0, 0.5)(1.0)
    QUIET.check_cancel()


def test_a_reporter_stops_the_work_through_its_cancel_check():
    import threading

    import pytest

    from engine.progress import Reporter
    from engine.runs.events import Cancelled

    flag = threading.Event()
    step = Reporter(cancel=flag).step("extract").sub(0.2, 0.4)
    step.check_cancel()  # not set: nothing happens
    flag.set()
    with pytest.raises(Cancelled):
        step.check_cancel()
