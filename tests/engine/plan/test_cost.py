"""What a plan costs: every step of every strategy counted, edits counted again, the same path rule as the trainer."""

import pytest
import torch

from conftest import with_

from engine.model.cut import SplitModel
from engine.model.device import pick_device
from engine.plan.config import TrainConfig
from engine.plan.cost import activation_cut, costed, edit_plan, runs_on_activations
from engine.plan.make import get_plan
from engine.plan.rules import FIXED_S
from engine.train.build import build


def _plan(folder, **kw):
    cfg = TrainConfig.create(data=str(folder), backbone="resnet18", weights="none", **kw)
    return cfg, get_plan(cfg)


def _parts(p) -> float:
    c = p.cost
    return c.plan_s + c.start_s + c.cache_s + p.phases.finetune_epochs * c.finetune_epoch_s + c.score_s + FIXED_S


def test_a_top_k_plan_counts_caching_its_views_and_its_epochs(tiny_folder):
    cfg, planned = _plan(tiny_folder, strategy="top-k", head_epochs=1, finetune_epochs=2, views=2)
    p, c = planned.plan, planned.plan.cost
    assert c.cache_s > 0 and c.finetune_epoch_s > 0 and c.images_per_s > 0
    assert c.start_s == pytest.approx(p.data.n_val / c.images_per_s, abs=0.05)  # counted (rounded to 0.1 s: a fast
    # CPU validates the tiny folder's photos in less than 0.05 s)
    assert p.cost.estimate_s == pytest.approx(_parts(p), abs=0.5)
    more = costed(cfg, p.edit(), p.cost.images_per_s, "cpu")  # the same plan, costed again: the same numbers
    assert more.cost.estimate_s == pytest.approx(p.cost.estimate_s, abs=0.5)  # the stored pace is rounded


def test_a_plan_from_scratch_costs_its_epochs_at_the_measured_forward_pace(tiny_folder):
    _, planned = _plan(tiny_folder, strategy="scratch", finetune_epochs=3)
    p, c = planned.plan, planned.plan.cost
    assert p.head.init == "random" and c.start_s == 0 and c.images_per_s > 0
    assert c.finetune_epoch_s > 0 and c.estimate_s >= 3 * c.finetune_epoch_s + FIXED_S - 0.5  # rounded to 0.1 s


def test_an_edit_is_costed_again(tiny_folder):
    cfg, planned = _plan(tiny_folder, strategy="top-k", head_epochs=0, finetune_epochs=2)
    p = planned.plan
    longer = edit_plan(cfg, p, finetune_epochs=6)
    assert longer.strategy == "custom"
    assert longer.cost.estimate_s == pytest.approx(p.cost.estimate_s + 4 * p.cost.finetune_epoch_s, abs=0.5)
    assert edit_plan(cfg, p) is p  # no change, nothing counted again
    frozen_head = edit_plan(cfg, p, head_epochs=2, finetune_epochs=0)  # now the head phase caches views
    assert frozen_head.cost.cache_s > 0 and frozen_head.cost.finetune_epoch_s == 0


def test_the_estimate_and_the_trainer_agree_on_the_path(tiny_folder):
    cfg, planned = _plan(tiny_folder, strategy="top-k", head_epochs=0, finetune_epochs=1)
    built = build(cfg, planned, pick_device())
    assert activation_cut(cfg, planned.plan) is not None
    assert runs_on_activations(cfg, planned.plan) == (built.split is not None) is True
    mixing = TrainConfig.create(data=str(tiny_folder), backbone="resnet18", weights="none", strategy="top-k", mixup=0.2)
    assert activation_cut(mixing, planned.plan) is None  # MixUp needs the images: the full forward runs


def test_the_cut_s_bytes_per_image_match_the_real_cut():
    from engine.model.groups import layer_groups
    from engine.model.profile import profile
    from engine.model.weights import create_backbone
    from engine.model.taps import FINAL, TapModel

    backbone, _ = create_backbone("resnet18", "none")
    model = TapModel(backbone, (FINAL,), 3)
    groups = layer_groups(model)
    boundary = len(groups) - 2  # the last stage
    split = SplitModel(model, groups, boundary, torch.zeros(1, 3, 96, 96))
    assert profile("resnet18", 96).cut(groups[boundary].name) == split.activation_bytes


def test_an_adapted_epoch_adds_a_training_batch_of_target_photos_beside_every_batch(tiny_folder):
    cfg, planned = _plan(tiny_folder, strategy="top-k", head_epochs=0, finetune_epochs=2)
    big = with_(planned.plan, n_train=5000, data__n_val=2000, n=800)  # seconds large enough to compare
    base = costed(cfg, big, 5.0, "cpu").cost
    adapted = costed(cfg, with_(big, adapt="mmd", adapt_strength=1.0), 5.0, "cpu").cost
    train_only = costed(cfg, with_(big, data__n_val=0), 5.0, "cpu").cost  # the epoch's training steps alone
    assert adapted.finetune_epoch_s == pytest.approx(base.finetune_epoch_s + train_only.finetune_epoch_s, abs=0.2)
    assert train_only.finetune_epoch_s > 5000 / 7000 * base.finetune_epoch_s  # a training image costs more than val's
