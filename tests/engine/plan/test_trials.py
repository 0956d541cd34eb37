"""Auto's adaptation trials on cached features: every candidate tried, scored without target labels (or with the
labelled target photos), and no adaptation kept unless a candidate scores higher within the val rule; the simple fixes
tried first, each as the plan would run it, and applied to the plan when kept."""

import numpy as np
import pytest
from conftest import a_plan

from engine.plan.domain import MAX_VAL_LOSS
from engine.plan.config import TrainConfig
from engine.plan.parts import Plan
from engine.plan.reasons import render
from engine.plan.trials import (
    SLOWER,
    STRONG_AUGMENT,
    Fix,
    Trial,
    adapt_trials,
    apply_fix,
    candidates,
    choose_trial,
    longer_warmup,
    run_trial,
    simple_fixes,
    strong_features,
)
from engine.probe.linear import fit_linear


def _blobs(seed: int, n: int = 60, shift: float = 0.0):
    rng = np.random.default_rng(seed)
    centres = np.array([[3.0, 0.0, 0.0, 0.0], [0.0, 3.0, 0.0, 0.0], [0.0, 0.0, 3.0, 0.0]])
    y = np.repeat(np.arange(3), n)
    return (centres[y] + rng.normal(0, 1, (3 * n, 4)) + shift).astype(np.float32), y


def _standardised(head, x):
    return ((x - head.mean) / head.scale).astype(np.float32)


def test_every_candidate_is_tried_and_the_choice_names_them_all():
    xs, ys = _blobs(0)
    xv, yv = _blobs(1)
    xt, yt = _blobs(2, shift=0.5)
    head = fit_linear(xs, ys, xv, yv, 3)
    train, val, zt = (_standardised(head, xs), ys), (_standardised(head, xv), yv), _standardised(head, xt)
    chose = adapt_trials(head, train, val, zt, steps=40)
    assert [(t.method, t.strength) for t in chose.trials] == candidates()
    assert all(0 <= t.score <= 1 and 0 <= t.val <= 1 for t in chose.trials)
    assert all(t.label in _said(chose) for t in chose.trials) and "reverse validation" in _said(chose)
    labelled = adapt_trials(head, train, val, zt, labelled=(zt[:30], yt[:30]), steps=40)
    assert "labelled target photos" in _said(labelled)


def test_every_trial_states_the_accuracy_expected_on_the_target_photos():
    """Each candidate, fix or adaptation, carries the reference's estimate, near the truth on a known shift."""
    xs, ys = _blobs(0)
    xv, yv = _blobs(1)
    xt, yt = _blobs(2, n=100, shift=0.8)
    head = fit_linear(xs, ys, xv, yv, 3)
    train, val, zt = (_standardised(head, xs), ys), (_standardised(head, xv), yv), _standardised(head, xt)
    chose = adapt_trials(head, train, val, zt, steps=40)
    truth = float((((xt - head.mean) / head.scale) @ head.std_coef.T + head.std_intercept).argmax(1).__eq__(yt).mean())
    estimate, low, high = chose.trials[0].expected
    assert low <= estimate <= high and abs(estimate - truth) < 0.1, (estimate, truth)
    assert all(t.expected is not None for t in chose.trials)
    assert f"no adaptation {chose.trials[0].score:.1%} (expected {estimate:.1%}" in _said(chose)


def test_a_trial_starts_from_the_plan_head_and_no_adaptation_keeps_its_answers():
    import torch

    xs, ys = _blobs(0)
    head = fit_linear(xs, ys, xs, ys, 3)
    z = _standardised(head, xs)
    untrained = run_trial("none", 0.0, head, (z, ys), z, steps=0)
    trained = run_trial("none", 0.0, head, (z, ys), z, steps=100)
    with torch.no_grad():
        start = untrained.fc(untrained.features(torch.from_numpy(z))).argmax(1).numpy()
        after = trained.fc(trained.features(torch.from_numpy(z))).argmax(1).numpy()
    assert (start == head.predictions).all()  # the map starts at zero: the plan's head, unchanged
    assert (after == start).mean() >= 0.95


def test_the_choice_keeps_no_adaptation_unless_a_candidate_beats_it_beyond_chance_and_within_the_val_rule():
    none = Trial("none", 0.0, 0.90, 0.80)
    tie = Trial("dann", 0.3, 0.90, 0.80)
    assert choose_trial([none, tie], 400, by_labels=False).method == "none"
    better = Trial("mmd", 1.0, 0.90 - MAX_VAL_LOSS, 0.85)  # 5 points above 0.80, whose standard error is 2 on 400
    assert choose_trial([none, tie, better], 400, by_labels=False).method == "mmd"
    assert choose_trial([none, tie, better], 40, by_labels=False).method == "none"  # 6 points on 40: chance
    costly = Trial("mmd", 1.0, 0.90 - MAX_VAL_LOSS - 0.01, 0.95)
    chose = choose_trial([none, costly], 400, by_labels=False)
    assert chose.method == "none" and "no adaptation loss" in _said(chose)
    assert "MMD at 1 95.0% (val 88.0%: more than 1% below, so not eligible)" in _said(chose)  # why the best lost


def test_the_simple_fixes_tried_are_those_the_plan_and_the_config_leave_open():
    names = [f.name for f in simple_fixes(1, 8)]
    assert names == ["", "slower", "warm-up"]
    warm = simple_fixes(1, 8)[2]
    assert warm.warmup == longer_warmup(1, 8) / 8 == 3 / 8 and simple_fixes(1, 8)[0].warmup == 1 / 8
    assert [f.name for f in simple_fixes(1, 8, asked_lr=True, asked_warmup=True)] == [""]
    assert [f.name for f in simple_fixes(1, 2)] == ["", "slower"]  # two epochs hold no longer warm-up
    strong = np.zeros((3, 4), np.float32)
    assert simple_fixes(1, 8, strong=strong)[-1].name == "stronger"


def test_smaller_rates_and_a_warm_up_move_the_map_less():
    xs, ys = _blobs(0)
    xt, _ = _blobs(2, shift=1.5)
    head = fit_linear(xs, ys, xs, ys, 3)
    z, zt = _standardised(head, xs), _standardised(head, xt)

    def moved(fix: Fix) -> float:
        model = run_trial("mmd", 1.0, head, (z, ys), zt, steps=60, fix=fix)
        return float(model.map[1].weight.detach().abs().sum())

    plain = moved(Fix())
    assert moved(Fix("slower", SLOWER)) < 0.5 * plain
    assert moved(Fix("slower", 0.0)) == 0.0  # the map's own rate: the layers below the head stay put
    assert moved(Fix("warm-up", 1.0, warmup=1.0)) < plain


def test_a_fix_whose_training_features_look_like_the_target_is_kept_and_adaptation_is_tried_on_it():
    shift = np.array([-2.0, 2.0, 0.0, 0.0], np.float32)
    xs, ys = _blobs(0)
    xv, yv = _blobs(1)
    xt, yt = _blobs(2, shift=shift)
    head = fit_linear(xs, ys, xv, yv, 3)
    z, zt = _standardised(head, xs), _standardised(head, xt)
    like_target = _standardised(head, xs + shift)  # an augmentation that makes the photos look like the target's
    fixes = [Fix(), Fix("stronger", train=like_target)]
    val = (_standardised(head, xv), yv)
    chose = adapt_trials(head, (z, ys), val, zt, labelled=(zt, yt), steps=150, fixes=fixes)
    fixed = [t for t in chose.trials if t.method == "none"]
    assert [t.fix for t in fixed] == ["", "stronger"]
    assert fixed[1].score > fixed[0].score + 0.05  # the labelled target photos see the fix's gain
    assert chose.fix == "stronger" and "so phase 2 takes stronger augmentation" in _said(chose)
    assert all(t.fix == "stronger" for t in chose.trials if t.method != "none")  # adaptation on top of the fix kept
    plain = adapt_trials(head, (z, ys), val, zt, labelled=(zt, yt), steps=150, fixes=[Fix(), Fix("stronger", train=z)])
    assert plain.fix == "" and "keeps its rates, warm-up and augmentation" in _said(plain)  # no gain: not kept


def _said(chose) -> str:
    return render(chose.decisions, "target")


def _plan(**kw) -> Plan:
    base = dict(backbone="resnet18", strategy="auto", groups=("a", "b", "head"), labels=("a", "b", "head"))
    return a_plan(**{**base, "head_epochs": 0, "finetune_epochs": 8, **kw})


def test_a_kept_fix_is_what_the_plan_runs():
    plan = _plan()
    slower = apply_fix(plan.phases, "slower")
    assert slower.lrs == (0.0, 1e-4 * SLOWER, 1e-3)  # the head keeps its rate
    assert apply_fix(plan.phases, "warm-up").warmup_epochs == 3
    assert apply_fix(plan.phases, "stronger").augment == STRONG_AUGMENT
    assert apply_fix(plan.phases, "") is plan.phases


def test_stronger_augmentation_is_tried_only_when_its_pass_fits_and_the_config_leaves_it_open(tiny_folder):
    paths = sorted(str(p) for p in tiny_folder.rglob("*.jpg"))
    plan = _plan(backbone="resnet18", taps=(-1,))
    cfg = TrainConfig.create(data=str(tiny_folder), backbone="resnet18", weights="none", budget=300)
    x, note = strong_features(plan, cfg, paths, pace=len(paths) / 1000.0)  # 1,000 s for the pass: over 10% of 300 s
    assert (
        x is None
        and note.kind == "fix-skipped"
        and note["n_train"] == len(paths)
        and note["seconds"] == pytest.approx(1000.0)
    )
    assert "not tried" in note.sentence and f"{len(paths):,} training photos" in note.sentence
    asked = TrainConfig.create(data=str(tiny_folder), backbone="resnet18", weights="none", augment="light")
    assert strong_features(plan, asked, paths, pace=1e6) == (None, None)
    x, note = strong_features(plan, cfg, paths, pace=1e6)
    assert note is None and x.shape == (len(paths), 512)
