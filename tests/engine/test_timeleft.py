"""The one pace model (engine.timeleft) and every time left that reads it, driven by a fake clock: a step's meter, the
typical training step, the CLI's line (`StepClock`), a background job (a download), the trainer's time left
(`TimeLeft`). The run's setup steps (`SetupProgress`) are tested in tests/engine/train/test_setup_steps.py."""

import math
from types import SimpleNamespace

import pytest

from engine.timeleft import Meter, UnitTimes, countdown, damp
from engine.service.console import StepClock
from engine.service.jobs import Job
from engine.train.callbacks import TimeLeft


def test_a_meter_is_silent_until_the_step_moves_and_zero_once_it_is_done(clock):
    meter = Meter(clock)
    assert meter.left() is None  # no report yet
    meter.report(0.0)  # a start is not progress
    assert meter.left() is None
    clock.now = 4.0
    meter.report(0.3)
    clock.now = 5.0
    meter.report(0.31)  # 1% past the first report: too little to go by
    assert meter.left() is None
    clock.now = 6.0
    meter.report(0.5)  # 0.2 in 2 s since the first report (a third of the way is 0.367 at 6 s: too close)
    assert meter.left() == pytest.approx(5.0)
    clock.now = 8.0  # no progress for 2 s: the pace slows as time passes
    assert meter.left() == pytest.approx(10.0)
    meter.report(1.0)
    assert meter.left() == 0.0


def test_since_its_first_report_a_meter_knows_the_pace_at_any_movement(clock):
    meter = Meter.of([(10.0, 0.0), (12.0, 0.1), (14.0, 0.11)], clock)
    assert meter.left(14.0) is None  # recent pace: 1% is too little
    assert meter.left(14.0, since_first=True) == pytest.approx(2.0 * 0.89 / 0.01)
    assert meter.elapsed(20.0) == 10.0  # from its first event


def test_the_typical_step_is_the_median_of_the_recent_ones(clock):
    units = UnitTimes(clock)
    assert units.typical() is None
    for t in (1.0, 2.0, 12.0, 13.0):  # 1 s, 1 s, a 10 s stall (a checkpoint), 1 s
        clock.now = t
        units.done()
    assert units.typical() == 1.0
    clock.now = 100.0  # a validation: not a step
    units.begin()
    clock.now = 103.0
    units.done()
    assert units.seconds[-1] == 3.0
    assert countdown(60.0, made_at=110.0, now=120.0) == 50.0


def test_the_cli_line_shows_the_steps_time_left(clock, capsys):
    line = StepClock(clock)
    line("probe x", 0.0)
    clock.now = 10.0
    line("probe x", 0.2)
    clock.now = 12.0
    line("probe x", 0.4)
    assert "about 6 s left" in capsys.readouterr().err  # 0.2 in 2 s since its first report: 0.6 more in 6 s


def test_a_background_job_has_its_stages_time_left(clock):
    job = Job("download")
    job.meter = Meter(clock)
    job.report("download (10.0 MB)", 0.0)
    clock.now = 2.0
    job.report("download (10.0 MB)", 0.1)
    clock.now = 4.0
    job.report("download (10.0 MB)", 0.5)
    assert job.left_s == pytest.approx(2.5)  # 0.4 in 2 s since its first report: the last half in 2.5 s
    job.report("checksum", 0.5)  # a new stage: its own pace
    assert job.left_s is None
    job.state = "done"
    assert job.left_s is None


def test_the_trainers_time_left_is_steps_at_their_typical_pace_plus_the_plans_for_the_next_phase(clock, monkeypatch):
    monkeypatch.setattr("engine.train.callbacks.scoring_seconds", lambda ctx, state: 7.0)
    plan = SimpleNamespace(cost=SimpleNamespace(finetune_epoch_s=40.0))
    ctx = SimpleNamespace(steps_per_epoch=10, phases=((1, 0, 2), (2, 2, 1)), plan=plan)
    phase = SimpleNamespace(number=1)
    state = SimpleNamespace(phase=phase, step=0, epoch=0, validated=False, epoch_log={"val_seconds": 3.0})
    left = TimeLeft(clock)
    left.before_fit(ctx, state)
    left.before_epoch(ctx, state)
    assert left.seconds_left(ctx, state) is None  # no pace yet
    for _ in range(5):
        clock.now += 2.0
        left.after_step(ctx, state)
        state.step += 1
    left.after_validate(ctx, state)
    # phase 1: 15 steps at 2 s and 2 validations at 3 s; phase 2: 10 steps at the plan's 4 s and 1 validation
    assert left.seconds_left(ctx, state) == pytest.approx(15 * 2.0 + 2 * 3.0 + 10 * 4.0 + 3.0 + 7.0)


def test_a_newer_estimate_is_weighed_in_by_the_time_since_the_last():
    assert damp(100.0, 1000.0, dt=0.0) == pytest.approx(100.0)  # no time between them: nothing moves
    assert damp(100.0, 1000.0, dt=1.0) < 130.0  # 1 s later, tau 10 s: a tenth of the way in log space
    assert damp(100.0, 1000.0, dt=100.0) == pytest.approx(1000.0, rel=1e-3)  # long after: the newer one
    assert damp(100.0, 10.0, dt=10.0) == pytest.approx(10 ** (2 - (1 - math.exp(-1))), rel=1e-6)
