"""Reverse validation: the reading of unlabelled photos whose labels carry back to the labelled ones wins."""

import numpy as np

from engine.probe.linear import fit_linear
from engine.probe.reverse import reverse_accuracy


def test_reverse_validation_prefers_the_reading_that_undoes_a_shift_of_the_whole_domain():
    rng = np.random.default_rng(0)
    centres = np.array([[3.0, 0.0], [0.0, 3.0]])
    y = np.repeat([0, 1], 100)
    xs = centres[y] + rng.normal(0, 1, (200, 2))
    head = fit_linear(xs, y, xs, y, 2)
    xt = centres[y] + rng.normal(0, 1, (200, 2)) + np.array([3.0, -3.0])  # the same classes, moved across the boundary
    as_trained = (xt - head.mean) / head.scale
    own = (xt - xt.mean(0)) / xt.std(0)
    zv = (xs - head.mean) / head.scale
    assert reverse_accuracy(head, own, zv, y) > 0.9 > 0.8 > reverse_accuracy(head, as_trained, zv, y)
    assert reverse_accuracy(head, np.full((5, 2), 9.0), zv, y) == 0.0  # one class only: no head to carry back
