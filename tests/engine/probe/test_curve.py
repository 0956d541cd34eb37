"""How many more photos (engine.probe.curve): the power law is recovered from its own points, the curve grows with
photos on data whose difficulty is known, and the lagging class is named."""

import numpy as np
import pytest

from engine.probe.curve import MIN_PHOTOS, fit_power_law, learning_curve, photos_to_reach, power_law


def test_the_power_law_is_recovered_from_its_points_and_inverted():
    n = np.array([20, 40, 80, 160, 320, 640])
    law = fit_power_law(n, power_law(n, 0.93, 2.0, 0.6))
    assert law == pytest.approx((0.93, 2.0, 0.6), rel=1e-3)
    need = photos_to_reach(law, 0.9)
    assert power_law(np.array([need]), *law)[0] == pytest.approx(0.9, abs=1e-6)
    assert photos_to_reach(law, 0.95) is None and fit_power_law(n[:2], n[:2] / 1000) is None


def _blobs(rng, per_class: list[int], spread: list[float], dims: int = 20):
    centres = rng.normal(size=(len(per_class), dims)) * 2.0
    x = np.concatenate([centres[c] + rng.normal(size=(k, dims)) * s for c, (k, s) in enumerate(zip(per_class, spread))])
    y = np.concatenate([np.full(k, c) for c, k in enumerate(per_class)])
    return x, y


def test_the_curve_grows_with_photos_and_names_the_class_that_lags():
    rng = np.random.default_rng(0)
    x, y = _blobs(rng, [60, 60, 60, 30], [1.0, 1.0, 1.0, 3.5])  # the last class: fewer photos, more spread
    curve = learning_curve(x, y, ["a", "b", "c", "d"])
    assert curve.photos == sorted(curve.photos) and curve.accuracy[-1] > curve.accuracy[0]
    assert all(lo <= a <= hi for lo, a, hi in zip(curve.low, curve.accuracy, curve.high))
    assert curve.per_class["d"][-1] < min(curve.per_class[c][-1] for c in "abc")
    assert " d " in curve.sentence or "of d" in curve.sentence or "class, d" in curve.sentence
    assert curve.n_now == len(y) and curve.class_photos["d"] == 30 and curve.law is not None
    n, acc = curve.drawn()
    assert len(n) == len(acc) > 0 and max(n) == pytest.approx(2 * len(y))


def test_too_few_photos_or_a_lone_photo_give_no_curve():
    rng = np.random.default_rng(1)
    x, y = _blobs(rng, [10, 10], [1.0, 1.0])
    assert len(y) < MIN_PHOTOS and learning_curve(x, y, ["a", "b"]) is None
    x, y = _blobs(rng, [40, 1], [1.0, 1.0])
    assert learning_curve(x, y, ["a", "b"]) is None


def test_the_folds_are_drawn_again_with_other_shuffles_for_each_repeat():
    from engine.probe.curve import CURVE_FOLDS, CURVE_REPEATS, FRACTIONS, _points

    rng = np.random.default_rng(2)
    x, y = _blobs(rng, [30, 30, 30], [1.5, 1.5, 1.5])
    photos, acc, per = _points(x, y, 3, seed=0)
    assert acc.shape == photos.shape == (CURVE_FOLDS * CURVE_REPEATS, len(FRACTIONS)) and per.shape[-1] == 3
    passes = acc.reshape(CURVE_REPEATS, CURVE_FOLDS, -1)
    assert not np.array_equal(passes[0], passes[1])  # another shuffle, not the same folds again


def test_a_large_set_draws_its_folds_once(monkeypatch):
    from engine.probe import curve

    monkeypatch.setattr(curve, "REPEAT_MAX", 50)
    x, y = _blobs(np.random.default_rng(3), [30, 30], [1.0, 1.0])
    photos, _, _ = curve._points(x, y, 2, seed=0)
    assert photos.shape[0] == curve.CURVE_FOLDS
