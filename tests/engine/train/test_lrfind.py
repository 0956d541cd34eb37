"""The learning-rate range test: a rate suggested on the trainer's own step, where the loss really falls, and applied
to every group in proportion."""

import numpy as np
import pytest
from conftest import a_plan, tiny_cfg

from engine.plan.preflight import preflight
from engine.train.lrfind import lr_find, rates_for, suggest_lr


def test_lr_find_suggests_a_rate(tiny_folder):
    cfg = tiny_cfg(tiny_folder, strategy="top-k")
    out = lr_find(cfg, steps=12, start=1e-6, end=10.0)
    assert len(out.lrs) == len(out.losses) >= 3 and list(out.lrs) == sorted(out.lrs)
    assert 1e-6 <= out.suggestion <= 10.0 and out.phase == 2
    assert out.groups[-1] == 1.0 and out.groups[0] == 0.0


def test_applying_a_suggested_rate_sets_the_head_and_keeps_every_other_group_in_proportion():
    plan = a_plan(lrs=(0.0, 1e-4, 1e-3))
    assert rates_for(plan, 5e-3) == pytest.approx((0.0, 5e-4, 5e-3))
    assert rates_for(a_plan(lrs=(0.0, 0.0, 0.0)), 5e-3) == (0.0, 0.0, 0.0)


def test_lr_suggestion_skips_a_long_flat_start_and_a_rate_far_below_the_plans_is_questioned():
    rng = np.random.default_rng(1)  # a curve where the steepest slope before the minimum is in the flat start
    lrs = list(np.geomspace(1e-7, 10, 70))
    flat = np.full(40, 2.7)  # 1e-7 .. 1e-3: nothing happens
    fall = np.linspace(2.7, 1.5, 20)  # 1e-3 .. 0.3: the loss falls
    rise = np.linspace(1.5, 3.0, 10)  # then diverges
    raw = np.concatenate([flat, fall, rise]) + rng.normal(0, 0.5, 70)  # one batch's loss is noisy
    smoothed, avg = [], 0.0
    for i, loss in enumerate(raw):  # as lr_find smooths it: the first values swing with single batches
        avg = 0.9 * avg + 0.1 * loss
        smoothed.append(avg / (1 - 0.9 ** (i + 1)))
    suggestion = suggest_lr(lrs, smoothed)
    assert lrs[40] <= suggestion <= lrs[59], suggestion
    assert suggest_lr(lrs[:5], [1.0, 1.1, 1.2, 1.3, 1.4]) == lrs[0]
    frozen = (True, False, False)
    plan = a_plan(groups=("a", "b", "head"), frozen=frozen, lrs=(0.0, 7e-8, 7e-7), head_epochs=0, finetune_epochs=3)
    assert "low-lr" in {f.code for f in preflight(plan)}
    assert "low-lr" not in {f.code for f in preflight(plan.edit(lrs=(0.0, 1e-4, 1e-3)))}
