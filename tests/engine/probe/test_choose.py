"""Choosing the head by evidence: which tap sets are candidates, under a budget too, how they are named, what scores
them. (The whole choice on real features is in test_linear and the planner's tests.)"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from engine.model.taps import FINAL
from engine.probe.choose import _metric, candidate_taps, label_of

NAMES = {0: "stage 1", 1: "stage 2", 2: "stage 3", 3: "stage 4", 4: "stage 5", 5: "stage 6", FINAL: "final"}


def _probe(accuracies: list[float]):
    curve = [{"tap": t, "accuracy": a, "name": NAMES[t]} for t, a in enumerate(accuracies)]
    return SimpleNamespace(backbone="net", stage_curve=[*curve, {"tap": FINAL, "accuracy": 0.5, "name": "final"}])


def test_the_candidates_are_the_final_features_the_best_stage_and_windows_ending_there_and_at_the_last():
    sets = candidate_taps(_probe([0.3, 0.5, 0.7, 0.9, 0.8, 0.6]))  # stage 4 (tap 3) is the best
    assert sets == [(FINAL,), (3,), (2, 3), (0, 1, 2, 3), (2, 3, 4, 5)]


def test_under_a_budget_only_the_sets_it_keeps_with_the_best_and_last_among_the_kept_stages():
    def keep(backbone, taps):
        return FINAL not in taps and max(taps) <= 2  # the budget cuts after stage 3

    assert candidate_taps(_probe([0.3, 0.5, 0.7, 0.9, 0.8, 0.6]), keep) == [(2,), (1, 2), (0, 1, 2)]
    assert candidate_taps(_probe([0.3]), lambda b, t: False) == []


def test_labels_name_the_stages_read_in_words():
    assert label_of((FINAL,), NAMES, False) == "final features"
    assert label_of((2, 3), NAMES, True) == "stage 3 + stage 4, with mirror images"
    assert label_of((0, 1, 2, 3), NAMES, False) == "stage 1 to stage 4"
    assert label_of((3, FINAL), NAMES, False) == "stage 4 + final features"


def test_balanced_accuracy_weighs_every_class_present_equally():
    y = np.array([0] * 8 + [1] * 2)
    pred = np.zeros(10, dtype=int)
    assert _metric(y, pred, "accuracy") == pytest.approx(0.8)
    assert _metric(y, pred, "balanced accuracy") == pytest.approx(0.5)
