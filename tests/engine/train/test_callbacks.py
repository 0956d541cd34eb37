"""Callbacks: the events are a closed list (a misspelt one is an error, not a hook that never runs), and none of the
callbacks is needed to train, validate and score."""

import pytest

from engine.plan.config import TrainConfig
from engine.runs.store import RunStore
from engine.train.callbacks import Callback, Checkpoints, DataStats, Diagnostics, Recorder, TimeLeft, default_callbacks
from engine.train.loop import Trainer
from conftest import planned, tiny_cfg
from engine.train.state import EVENT_NAMES, Event


def test_a_callback_with_a_misspelt_event_is_refused_when_defined():
    with pytest.raises(TypeError, match="after_epok is not an event"):

        class Typo(Callback):
            def after_epok(self, ctx, state) -> None:
                pass

    class Fine(Callback):
        def after_epoch(self, ctx, state) -> None:
            state.seen = True

    assert "after_epoch" in EVENT_NAMES and Fine.order == 0


def test_the_trainer_refuses_an_event_name_it_does_not_know(tiny_folder, tmp_path):
    cfg = TrainConfig.create(data=str(tiny_folder))
    trainer = Trainer(cfg, RunStore(tmp_path).create(cfg.to_dict()))
    with pytest.raises(ValueError, match="'after_epok' is not an event"):
        trainer("after_epok")
    with pytest.raises(ValueError, match="is not an event"):
        trainer("after_epoch")  # a name, even a right one, is not an `Event`
    with pytest.raises(ValueError, match="is not a valid Event"):
        Event("after_epok")


def _cfg(data) -> TrainConfig:
    return tiny_cfg(data, finetune_epochs=1, warmup_epochs=0)


@pytest.mark.parametrize("keep", [[], [Recorder], [Checkpoints, TimeLeft]])
def test_a_trainer_without_the_optional_callbacks_still_trains_validates_and_scores(tiny_folder, tmp_path, keep):
    """Epoch 0, every epoch's validation, the final scoring and the record of how the run ended are the loop's own."""
    cfg = _cfg(tiny_folder)
    run = planned(cfg, RunStore(tmp_path).create(cfg.to_dict()))
    callbacks = [cb for cb in default_callbacks() if type(cb) in keep]
    trainer = Trainer(cfg, run, callbacks=callbacks)
    metrics = trainer.fit()
    assert metrics.status == "finished", metrics.error
    assert 0 <= metrics.best_val_acc <= 1 and len(metrics.val_pred) == len(metrics.val_labels)
    assert trainer.state.epoch == 2 and trainer.state.start_val_s > 0  # both phases ran, after epoch 0
    assert run.read_json("metrics.json")["status"] == "finished" and run.status()["state"] == "finished"
    assert run.events("run_ended")[-1].status == "finished"
    assert (run.load_checkpoint("best") is not None) == (Checkpoints in keep)
    assert bool(run.events("epoch")) == (Recorder in keep)  # the event log is the Recorder's
    assert not (run.path / "data_stats.json").exists()


def test_the_default_callbacks_run_in_their_order():
    kinds = [type(cb) for cb in sorted(default_callbacks(), key=lambda c: c.order)]
    assert kinds == [DataStats, TimeLeft, Diagnostics, Recorder, Checkpoints]
