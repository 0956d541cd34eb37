"""The run's state: one checkpoint schema that a resumed run reads back whole (weights, optimiser, counters, random
state), a best/start checkpoint that holds the weights alone, and the closed list of events in the loop's order."""

from types import SimpleNamespace

import torch
from torch import nn

from engine.train.state import EVENT_NAMES, RANK_EVENTS, Event, TrainState


def _ctx(seed: int) -> SimpleNamespace:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    opt = torch.optim.AdamW(model.parameters(), lr=0.1)
    return SimpleNamespace(model=model, opt=opt, run=SimpleNamespace(events_offset=lambda: 1234))


def _one_step(ctx: SimpleNamespace) -> None:
    ctx.model.train()
    ctx.model(torch.randn(8, 4)).sum().backward()
    ctx.opt.step()


def test_a_resumable_checkpoint_restores_the_weights_the_optimiser_the_counters_and_the_random_state():
    ctx = _ctx(0)
    _one_step(ctx)
    state = TrainState(step=7, epoch=3, best_acc=0.8, best_epoch=2, top_val=0.85, best_target=0.6)
    checkpoint = state.to_checkpoint(ctx)
    expected_draw = torch.rand(3)  # what the random state at the checkpoint draws next

    other, resumed = _ctx(1), TrainState()
    assert resumed.from_checkpoint(other, checkpoint) == 3
    for a, b in zip(ctx.model.state_dict().values(), other.model.state_dict().values()):
        assert torch.equal(a, b)  # BatchNorm's running statistics included
    moments = other.opt.state_dict()["state"][0]
    assert torch.equal(moments["exp_avg"], ctx.opt.state_dict()["state"][0]["exp_avg"])
    assert (resumed.step, resumed.best_acc, resumed.best_epoch) == (7, 0.8, 2)
    assert (resumed.top_val, resumed.best_target, resumed.resumed_from) == (0.85, 0.6, 3)
    assert torch.equal(torch.rand(3), expected_draw)
    assert checkpoint["events_offset"] == 1234  # where the event log is cut back to on resume


def test_the_best_and_start_checkpoints_hold_the_weights_and_the_epoch_alone():
    ctx = _ctx(0)
    checkpoint = TrainState(epoch=5).to_checkpoint(ctx, resumable=False)
    assert set(checkpoint) == {"model", "epoch"} and checkpoint["epoch"] == 5


def test_a_checkpoint_from_before_top_val_and_the_target_score_reads_with_their_defaults():
    ctx = _ctx(0)
    checkpoint = TrainState(step=2, epoch=1, best_acc=0.5, best_epoch=1).to_checkpoint(ctx)
    del checkpoint["top_val"], checkpoint["best_target"]
    state = TrainState()
    state.from_checkpoint(_ctx(1), checkpoint)
    assert state.top_val == 0.5 and state.best_target == -1.0


def test_the_events_are_in_the_loops_order_and_end_with_exactly_the_three_endings():
    assert EVENT_NAMES[0] == "before_fit" and EVENT_NAMES[-3:] == ("after_fit", "after_cancel", "after_fail")
    assert len(set(EVENT_NAMES)) == len(EVENT_NAMES)
    assert RANK_EVENTS <= set(Event) and Event.AFTER_FIT not in RANK_EVENTS  # rank 0 alone ends the run
