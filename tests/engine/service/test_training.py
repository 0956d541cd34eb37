"""A queued run from start to end: planned under its lock when it came without a plan, then trained; the Trainer
itself only runs a plan it is handed."""

import pytest

from engine.errors import RunBusy
from engine.plan.config import TrainConfig
from engine.runs.store import RunLock, RunStore
from engine.service.training import train
from engine.train.loop import Trainer


def _cfg(data, **kw) -> TrainConfig:
    base = dict(strategy="feature-extraction", head_epochs=1, finetune_epochs=0, batch_size=4, views=1)
    return TrainConfig.create(data=str(data), val_fraction=0.34, **{**base, **kw})


def test_a_run_queued_without_a_plan_is_planned_then_trained_and_keeps_the_events_of_its_planning(
    tiny_folder, tmp_path
):
    cfg = _cfg(tiny_folder)
    run = RunStore(tmp_path).create(cfg.to_dict())
    metrics = train(cfg, run)
    assert metrics.status == "finished", metrics.error
    assert (run.path / "plan.json").exists() and run.status()["plan_events"] > 0
    names = [e.name for e in run.events("setup")]
    assert names.index("probe " + cfg.backbone) < names.index("validate the starting model")  # planning's steps stay


def test_the_trainer_never_plans_a_run_that_has_no_plan(tiny_folder, tmp_path):
    cfg = _cfg(tiny_folder)
    run = RunStore(tmp_path).create(cfg.to_dict())
    metrics = Trainer(cfg, run).fit()
    assert metrics.status == "failed" and "has no plan" in metrics.error
    assert not (run.path / "plan.json").exists() and not run.events("setup")  # nothing was probed or loaded


def test_a_plan_that_cannot_be_made_is_the_runs_failure_recorded_in_one_line(tmp_path):
    cfg = _cfg(tmp_path / "nowhere")
    run = RunStore(tmp_path / "runs").create(cfg.to_dict())
    metrics = train(cfg, run)
    assert metrics.status == "failed" and "nowhere" in metrics.error and "\n" not in metrics.error
    assert run.status()["state"] == "failed" and run.read_json("metrics.json")["status"] == "failed"
    assert run.events("run_ended")[-1].status == "failed"


def test_planning_runs_under_the_runs_lock(tiny_folder, tmp_path):
    cfg = _cfg(tiny_folder)
    run = RunStore(tmp_path).create(cfg.to_dict())
    with RunLock(run), pytest.raises(RunBusy):
        train(cfg, run)
    assert not (run.path / "plan.json").exists()
