"""engine.metrics: the interval, the paired test and the per-class scores every caller uses."""

import math

import numpy as np
import pytest

from engine.metrics import confusion, per_class_accuracy, wilson


def test_wilson_matches_the_closed_form_and_stays_inside_zero_and_one():
    low, high = wilson(8, 10)
    assert (low, high) == pytest.approx((0.4902, 0.9433), abs=1e-4)  # the textbook 8 of 10
    assert wilson(0, 10)[0] == 0.0 and wilson(10, 10)[1] == 1.0
    assert wilson(0, 0) == (0.0, 1.0)
    wide, narrow = wilson(45, 50), wilson(900, 1000)
    assert narrow[1] - narrow[0] < wide[1] - wide[0]


def test_per_class_accuracy_and_confusion_keep_absent_classes():
    y, pred = np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1])
    acc = per_class_accuracy(y, pred, ["a", "b", "c"])
    assert acc["a"] == 0.5 and acc["b"] == 1.0 and math.isnan(acc["c"])
    assert confusion(y, pred, 3) == [[1, 1, 0], [0, 2, 0], [0, 0, 0]]
