"""The head-level adaptation a plan starts from: every candidate scored by the accuracy expected on the target photos
(or by the labelled ones), auto's rule, what was asked for, and the decision that says it (synthetic features)."""

import json

import numpy as np
import pytest
from features import classes

from engine.plan.config import HEAD_METHODS
from engine.plan.reasons import Decision
from engine.plan.target_head import Readings, Settings, ahead, as_read, choose_target_head
from engine.probe.linear import fit_linear

UNIFORM = np.full(3, 1 / 3)


def readings(zt_of, n_labelled: int = 0) -> tuple:
    x, y = classes([150, 150, 150], seed=1)
    xv, yv = classes([60, 60, 60], seed=2)
    head = fit_linear(x, y, xv, yv, 3)
    xt, yt = classes([100, 100, 100], seed=3)
    zt = zt_of(as_read(xt, head, norm=False))
    rows = np.arange(len(zt) - n_labelled, len(zt))
    z = lambda a: (a - head.mean) / head.scale  # noqa: E731
    return head, Readings(z(x), y, z(xv), yv, zt, rows, yt[rows])


def stretched(z: np.ndarray) -> np.ndarray:
    return z * np.array([0.3, 3.0, 1.0, 1, 1, 1, 1, 1], dtype=np.float32)


def test_every_candidate_is_scored_and_one_asked_for_is_used_whatever_the_scores():
    head, r = readings(lambda z: z)
    choice = choose_target_head(head, r, Settings(1.0, UNIFORM, asked="t3a"))
    assert set(choice.scored) == {"none", *HEAD_METHODS}
    assert choice.method == "t3a" and choice.head is not None
    assert choice.head.accuracy == pytest.approx(choice.scored["t3a"]["val"])
    for s in choice.scored.values():
        assert s["low"] <= s["estimate"] <= s["high"] and s["labelled"] is None
    assert choose_target_head(head, r, Settings(1.0, UNIFORM, asked="none")).method == ""


def test_auto_keeps_the_head_when_the_target_photos_look_like_the_training_ones():
    head, r = readings(lambda z: z)
    choice = choose_target_head(head, r, Settings(1.0, UNIFORM))
    assert choice.method == "" and choice.head is None and choice.reverse == 0.0
    assert not any(ahead(choice.scored[m], choice.scored["none"]) for m in HEAD_METHODS)


def test_labelled_target_photos_choose_when_there_are_some():
    head, r = readings(stretched, n_labelled=90)
    choice = choose_target_head(head, r, Settings(1.0, UNIFORM))
    none = choice.scored["none"]
    eligible = [m for m in HEAD_METHODS if ahead(choice.scored[m], none)]
    assert choice.method == max(eligible, key=lambda m: choice.scored[m]["labelled"])
    assert choice.scored[choice.method]["labelled"] > none["labelled"]
    assert 0 < choice.reverse <= 1


def test_a_candidate_is_ahead_only_when_its_paired_gain_is_above_zero_and_within_the_val_rule():
    ref = {"estimate": 0.60, "low": 0.55, "high": 0.65, "val": 0.95, "labelled": None}
    assert not ahead({**ref, "estimate": 0.70, "gain_low": -0.01, "gain_high": 0.2}, ref)  # the gain may be none
    assert ahead({**ref, "estimate": 0.64, "gain_low": 0.01, "gain_high": 0.07}, ref)  # inside the standing interval
    assert not ahead({**ref, "estimate": 0.70, "gain_low": 0.05, "gain_high": 0.15, "val": 0.93}, ref)  # val rule


def test_every_candidate_has_its_paired_gain_and_the_sentence_says_it():
    head, r = readings(stretched)
    choice = choose_target_head(head, r, Settings(1.0, UNIFORM))
    assert "gain_low" not in choice.scored["none"]
    for m in HEAD_METHODS:
        s = choice.scored[m]
        assert s["gain_low"] <= s["gain_high"]
        assert f"gain {s['gain_low']:+.1%} to {s['gain_high']:+.1%}" in choice.decision().sentence


def test_the_decision_says_each_candidate_and_is_stored_as_data():
    head, r = readings(stretched)
    decision = choose_target_head(head, r, Settings(1.0, UNIFORM)).decision()
    again = Decision.from_dict(json.loads(json.dumps(decision.to_dict())))
    assert again == decision
    for m in ("none", *HEAD_METHODS):
        assert f"{decision['scored'][m]['estimate']:.1%}" in decision.sentence


def test_without_labels_each_candidate_is_judged_near_its_true_accuracy_on_the_target_photos():
    """Target photos stretched away from the training ones; no labels given. Every candidate's estimate (one adapted
    reference judging its answers) is within 10 points of the share of target photos it really gets right."""
    head, r = readings(stretched, n_labelled=300)
    truth = {m: s["labelled"] for m, s in choose_target_head(head, r, Settings(1.0, UNIFORM)).scored.items()}
    unlabelled = r._replace(rows=np.zeros(0, dtype=np.int64), yl=np.zeros(0, dtype=np.int64))
    scored = choose_target_head(head, unlabelled, Settings(1.0, UNIFORM)).scored
    for m, s in scored.items():
        assert abs(s["estimate"] - truth[m]) <= 0.10, (m, s["estimate"], truth[m])


def test_with_labelled_target_photos_the_sentence_says_none_got_more_of_them_right():
    head, r = readings(lambda z: z, n_labelled=90)
    choice = choose_target_head(head, r, Settings(1.0, UNIFORM))
    assert choice.method == ""
    sentence = choice.decision().sentence
    assert "none gets more of the labelled target photos right than the head as it stands" in sentence
    assert "beyond its interval" not in sentence
