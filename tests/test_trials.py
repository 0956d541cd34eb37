"""Auto's adaptation trials on cached features: every candidate tried, scored without target labels (or with the
labelled target photos), and no adaptation kept unless a candidate scores higher within the val rule."""

import numpy as np

from engine.plan.domain import MAX_VAL_LOSS
from engine.plan.trials import Trial, adapt_trials, candidates, choose_trial, run_trial
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
    assert all(t.label in chose.reason for t in chose.trials) and "reverse validation" in chose.reason
    labelled = adapt_trials(head, train, val, zt, labelled=(zt[:30], yt[:30]), steps=40)
    assert "labelled target photos" in labelled.reason


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
    assert chose.method == "none" and "no adaptation loss" in chose.reason
