"""The reference adapted to new photos (engine.probe.reference): where the photos shifted as a whole, a model stays
sure of wrong answers and ATC on its own confidence reads high; the reference's support finds the truth. Where
nothing shifted, it agrees with ATC."""

import numpy as np

from engine.probe.atc import atc
from engine.probe.linear import fit_linear
from engine.probe.reference import adapted_reference, supported_accuracy

K, D = 3, 16


def _photos(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    y = np.arange(n) % K
    means = np.eye(K, D) * 4.0
    return means[y] + rng.normal(size=(n, D)), y


def _answers(model, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    logits = ((x - model.mean) / model.scale) @ model.std_coef.T + model.std_intercept
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    return p.argmax(1), p.max(1)


def _case(shift: np.ndarray) -> tuple[float, float, float]:
    """(truth, ATC, the reference's estimate) for a model of the training photos on photos moved by `shift`."""
    rng = np.random.default_rng(0)
    (xs, ys), (xv, yv), (xt, yt) = _photos(rng, 600), _photos(rng, 300), _photos(rng, 300)
    xt = xt + shift
    model = fit_linear(xs, ys, xv, yv, K)
    val_answers, val_conf = _answers(model, xv)
    answers, conf = _answers(model, xt)
    truth = float(np.mean(answers == yt))
    ref = adapted_reference(xs, ys, xt, K)
    found = supported_accuracy(ref, xv, val_answers, val_answers == yv, xt, answers)
    assert found.interval[0] <= found.accuracy <= found.interval[1]
    return truth, atc(val_conf, val_answers == yv, conf), found.accuracy


def test_on_photos_moved_as_a_whole_the_reference_finds_what_confidence_misses():
    shift = np.zeros(D)
    shift[:K] = [0.0, 9.0, 0.0]  # every photo pushed toward the second class: answered surely, mostly wrong
    truth, by_confidence, by_reference = _case(shift)
    assert truth < 0.5 and by_confidence > truth + 0.3, (truth, by_confidence)
    assert abs(by_reference - truth) < 0.08, (truth, by_reference)


def test_where_nothing_moved_the_reference_agrees_with_confidence_and_the_truth():
    truth, by_confidence, by_reference = _case(np.zeros(D))
    assert truth > 0.9 and abs(by_reference - truth) < 0.04 and abs(by_reference - by_confidence) < 0.04
