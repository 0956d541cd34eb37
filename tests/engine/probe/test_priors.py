"""EM re-estimation of the class mix: on photos drawn in a known mix from classes whose look is known, it recovers
the mix where counting the predicted classes drifts toward the training mix."""

import numpy as np

from engine.probe.priors import em_mix, reweighted


def _posteriors(mix_drawn, train_mix, n=20_000, seed=0):
    """Three classes, one feature each drawn from N(2k, 1); the probabilities a calibrated model trained under
    `train_mix` gives, for photos drawn in `mix_drawn`; and their true classes."""
    rng = np.random.default_rng(seed)
    y = rng.choice(3, n, p=mix_drawn)
    x = rng.normal(2.0 * y, 1.0)
    likelihood = np.exp(-0.5 * (x[:, None] - 2.0 * np.arange(3)) ** 2)
    post = likelihood * np.asarray(train_mix)
    return post / post.sum(1, keepdims=True), y


def test_em_recovers_a_known_class_mix_that_counting_misses():
    truth, train = np.array([0.7, 0.2, 0.1]), np.full(3, 1 / 3)
    probs, y = _posteriors(truth, train)
    found = em_mix(probs, train)
    counted = np.bincount(probs.argmax(1), minlength=3) / len(probs)
    assert np.abs(found - truth).max() < 0.02, found
    assert np.abs(counted - truth).max() > 2 * np.abs(found - truth).max(), (counted, found)
    right_before = (probs.argmax(1) == y).mean()
    right_after = (reweighted(probs, train, found).argmax(1) == y).mean()
    assert right_after > right_before  # the answers under the mix found are right more often


def test_photos_in_the_training_mix_keep_it():
    train = np.array([0.5, 0.3, 0.2])
    probs, _ = _posteriors(train, train, seed=1)
    assert np.abs(em_mix(probs, train) - train).max() < 0.02
    assert np.allclose(reweighted(probs, train, train), probs)
