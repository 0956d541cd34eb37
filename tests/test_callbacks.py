"""Callbacks: the events are a closed list, so a misspelt one is an error, not a hook that never runs."""
import pytest

from engine.plan.config import TrainConfig
from engine.runs.store import RunStore
from engine.train.callbacks import EVENTS, Callback
from engine.train.loop import Trainer


def test_a_callback_with_a_misspelt_event_is_refused_when_defined():
    with pytest.raises(TypeError, match="after_epok is not an event"):
        class Typo(Callback):  # noqa: F841 - defining it is the error
            def after_epok(self, learn) -> None:
                pass

    class Fine(Callback):
        def after_epoch(self, learn) -> None:
            learn.seen = True
    assert "after_epoch" in EVENTS and Fine.order == 0


def test_the_trainer_refuses_an_event_name_it_does_not_know(tiny_folder, tmp_path):
    cfg = TrainConfig.create(data=str(tiny_folder))
    trainer = Trainer(cfg, RunStore(tmp_path).create(cfg.to_dict()))
    with pytest.raises(ValueError, match="'after_epok' is not an event"):
        trainer("after_epok")
