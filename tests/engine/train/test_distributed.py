"""Data-parallel helpers in one process: an epoch's order split so every rank takes as many steps and every photo is
taken, a single process left alone, and the run store as the other ranks see it (reads go through, writes do
nothing, a write it does not name fails loudly). Two real processes under gloo: tests/engine/service/test_runner.py."""

import numpy as np
import pytest
import torch

from engine.runs.events import EpochEnded
from engine.runs.store import RunStore
from engine.train.distributed import ReadOnlyRun, init, shard, share_run_id, val_logits


def test_a_single_process_is_rank_0_of_1_and_keeps_its_order_and_its_run_id(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert init() == (0, 1)
    order = np.array([4, 2, 0, 3, 1])
    assert shard(order, 0, 1) is order
    assert share_run_id("abc") == "abc" and share_run_id(None) == ""


def test_three_ranks_take_as_many_steps_and_every_photo_between_them():
    order = np.random.default_rng(0).permutation(10)
    parts = [shard(order, rank, 3) for rank in range(3)]
    assert [len(p) for p in parts] == [4, 4, 4]  # 10 padded to 12 by wrapping
    assert set(np.concatenate(parts)) == set(order)
    assert list(parts[0][:2]) == [order[0], order[3]]  # every third position, from the rank's own


def test_a_single_process_validates_every_row_at_once():
    calls = []

    def fn(rows):
        calls.append(rows)
        return torch.ones(5, 2)

    assert val_logits(fn, 5, 0, 1).shape == (5, 2) and calls == [None]


def test_the_other_ranks_read_the_run_and_write_nothing(tmp_path):
    run = RunStore(tmp_path).create({"data": "x"})
    run.write_json("plan.json", {"a": 1})
    before = run.events_offset()
    seen = ReadOnlyRun(run)
    assert (seen.id, seen.path, seen.config) == (run.id, run.path, run.config)
    assert seen.read_json("plan.json") == {"a": 1} and seen.events_offset() == before

    seen.append(EpochEnded(epoch=1, phase=1, train_loss=0.5, train_acc=0.5, val_loss=0.5, val_acc=0.5))
    seen.write_json("plan.json", {"a": 2})
    seen.set_status(state="failed")
    assert seen.save_checkpoint("last", {"model": {}}) is None
    assert run.events_offset() == before and run.read_json("plan.json") == {"a": 1}
    assert run.load_checkpoint("last") is None and run.status().get("state") != "failed"


def test_a_write_the_read_only_run_does_not_name_fails_instead_of_being_dropped(tmp_path):
    seen = ReadOnlyRun(RunStore(tmp_path).create({}))
    with pytest.raises(AttributeError):
        seen.update_json("plan.json", lambda d: d)
