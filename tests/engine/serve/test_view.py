"""RunView: what a page shows of a run, from its snapshot alone."""

import pytest
from conftest import a_plan

from engine.runs.events import read_record
from engine.serve.view import Bar, RunView


def _snap(state, events, plan=None):
    """A snapshot as `Runner.snapshot` gives it, its events written as the log's lines and read back typed."""
    typed = [read_record(e) for e in events]
    return {"id": "r1", "status": {"state": state}, "events": typed, "plan": plan, "metrics": None, "config": {}}


PLAN = a_plan(head_epochs=1, finetune_epochs=2)


def test_a_queued_run_waits_then_shows_its_named_step():
    assert RunView.of(_snap("queued", [])).bars() == [Bar(0.0, "queued: waiting for the runner…")]
    setup = {"kind": "setup", "t": 1.0, "name": "probe x", "fraction": 0.25, "run_eta_s": 30.0}
    view = RunView.of(_snap("running", [setup], PLAN))
    assert view.bars() == [Bar(0.25, "probe x · 25%")] and view.live and view.total_epochs == 3
    assert view.time_left(11.0) == pytest.approx(20.0)  # the estimate made at t=1, counted down


def test_training_progress_counts_finished_epochs_and_the_steps_of_the_current_one():
    events = [
        {"kind": "epoch", "t": 1.0, "epoch": 0, "val_acc": 0.5},
        {"kind": "phase_started", "t": 2.0, "phase": 1, "steps_per_epoch": 4, "frozen": [], "lrs": []},
        *({"kind": "step", "t": 3.0 + i, "epoch": 1, "eta_s": 10.0, "running_acc": 0.6} for i in range(4)),
        {"kind": "epoch", "t": 8.0, "epoch": 1, "val_acc": 0.7},
        {"kind": "step", "t": 9.0, "epoch": 2, "eta_s": 5.0, "running_acc": 0.8},
    ]
    view = RunView.of(_snap("running", events, PLAN))
    assert view.bars() == [Bar(pytest.approx((1 + 1 / 4) / 3), "training: epoch 2 of 3, step 1 of 4")]
    assert view.epochs_trained == 1 and view.best_val_acc == 0.7 and view.in_epoch == read_record(events[-1])
    assert view.time_left(10.0) == pytest.approx(4.0, abs=0.3)  # the newest step's 5 s, a second old, damped in
    assert RunView.of(_snap("finished", events, PLAN)).time_left(10.0) is None


def test_a_run_without_epochs_says_the_head_is_the_model():
    view = RunView.of(
        _snap(
            "running",
            [{"kind": "epoch", "t": 1.0, "epoch": 0, "val_acc": 0.9}],
            a_plan(head_epochs=0, finetune_epochs=0),
        )
    )
    assert view.bars() == [Bar(1.0, "no training epochs: the linear probe's head is the model")]
    assert view.trained == [] and view.in_epoch is None


def test_a_failed_run_says_why_from_its_metrics_or_its_status():
    snap = {**_snap("failed", []), "metrics": {"error": "disk full"}}
    assert RunView.of(snap).error == "disk full"
    assert (
        RunView.of({**_snap("failed", []), "status": {"state": "failed", "error": "x.jpg: unreadable"}}).error
        == "x.jpg: unreadable"
    )
