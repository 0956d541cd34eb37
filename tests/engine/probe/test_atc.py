"""Average Thresholded Confidence (engine.probe.atc) on synthetic scores whose accuracy is known."""

import numpy as np
import pytest

from engine.probe.atc import atc, atc_interval, atc_threshold


def _photos(rng, n: int, accuracy: float):
    """A model whose mistakes look alike everywhere: right answers' confidences from Beta(12, 2), wrong ones' from
    Beta(3, 4); only the share of right answers changes from place to place (ATC's assumption)."""
    right = rng.random(n) < accuracy
    return np.where(right, rng.beta(12, 2, n), rng.beta(3, 4, n)), right


def test_atc_recovers_a_known_accuracy_when_the_mistakes_look_alike():
    rng = np.random.default_rng(0)
    val_conf, val_right = _photos(rng, 2000, 0.8)
    for accuracy in (0.8, 0.65, 0.5):  # deployment photos where the model is right less often
        new_conf, new_right = _photos(rng, 3000, accuracy)
        assert abs(atc(val_conf, val_right, new_conf) - new_right.mean()) < 0.05, accuracy
    same_conf, same_right = _photos(rng, 3000, 0.8)
    lo, hi = atc_interval(val_conf, val_right, same_conf, draws=200)
    assert lo <= same_right.mean() <= hi and hi - lo < 0.06


def test_the_threshold_leaves_the_val_accuracy_above_it():
    conf = np.array([0.2, 0.4, 0.6, 0.8, 0.9])
    assert np.mean(conf > atc_threshold(conf, np.array([1, 0, 1, 1, 0]))) == pytest.approx(0.6)
    assert atc_threshold(conf, np.ones(5)) == -np.inf and atc(conf, np.ones(5), conf) == 1.0
    assert atc(conf, np.zeros(5), conf) == 0.0
