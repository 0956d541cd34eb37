"""Average Thresholded Confidence (engine.probe.atc) on synthetic scores whose accuracy is known."""

import numpy as np
import pytest

from engine.probe.atc import atc, atc_gain_interval, atc_interval, atc_threshold


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


def test_a_gain_paired_on_the_same_photos_is_seen_where_the_two_intervals_overlap():
    """Two models that answer val alike, with few val mistakes (the threshold rests on them), and on the new photos
    one is confident on 6% more of them: its estimate sits inside the other's interval, but the paired interval of
    the gain lies above zero and holds the true 6 points; a model against itself gains exactly nothing."""
    rng = np.random.default_rng(1)
    val_conf, val_right = _photos(rng, 300, 0.97)
    new_conf, _ = _photos(rng, 1000, 0.7)
    better = new_conf.copy()
    low_ones = np.argsort(new_conf)[:60]
    better[low_ones] = 0.999  # 60 of the 1000 answers the reference now supports fully
    a, b = (val_conf, val_right, better), (val_conf, val_right, new_conf)
    assert atc(*a) - atc(*b) == pytest.approx(0.06)
    assert atc(*a) < atc_interval(*b)[1]  # the old rule: not beyond the other's interval
    low, high = atc_gain_interval(a, b)
    assert 0 < low <= 0.06 <= high
    assert atc_gain_interval(b, b) == (0.0, 0.0)
