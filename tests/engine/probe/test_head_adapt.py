"""Head-level adaptation on features: CORAL matches the target covariance, SHOT's loss is lowest for confident and
diverse predictions, the folded heads predict as their methods do, and each method recovers accuracy on a shift it
is built for (synthetic features, a few hundred rows)."""

import numpy as np
import pytest
import torch
from features import classes

from engine.probe import head_adapt
from engine.probe.head_adapt import (
    centroid_labels,
    coral_head,
    em_head,
    im_loss,
    logits_of,
    recoloured,
    refit_head,
    shot_head,
    t3a_head,
)
from engine.probe.linear import fit_linear


@pytest.fixture
def head_and_val():
    x, y = classes([150, 150, 150], seed=1)
    xv, yv = classes([60, 60, 60], seed=2)
    fit = fit_linear(x, y, xv, yv, 3)
    z = lambda a: (a - fit.mean) / fit.scale  # noqa: E731 - read as the run reads them
    return fit, z(x), y, z(xv), yv, z


def accuracy(head, z, y) -> float:
    return float(np.mean(logits_of(head, z).argmax(1) == y))


def test_coral_recolours_the_training_features_with_the_target_covariance(monkeypatch):
    monkeypatch.setattr(head_adapt, "CORAL_EPS", 1e-9)
    rng = np.random.default_rng(0)
    xs = rng.normal(size=(4000, 5))
    mix = rng.normal(size=(5, 5))
    zt = rng.normal(size=(4000, 5)) @ mix + 2.0
    out = recoloured(xs, zt)
    assert np.allclose(np.cov(out, rowvar=False), np.cov(zt, rowvar=False), atol=1e-6)
    assert np.allclose(out.mean(0), zt.mean(0), atol=1e-9)


def test_coral_gains_on_target_features_that_were_stretched(head_and_val):
    head, xs, ys, _, _, z = head_and_val
    xt, yt = classes([100, 100, 100], seed=3)
    zt = z(xt) * np.array([0.3, 3.0, 1.0, 1, 1, 1, 1, 1], dtype=np.float32)  # two axes stretched, one squeezed
    assert accuracy(coral_head(head, xs, ys, zt, 1.0), zt, yt) > accuracy(head, zt, yt)


def test_im_loss_is_lowest_for_confident_and_diverse_predictions():
    diverse = torch.eye(4).repeat(5, 1) * 20  # each photo sure, the classes used evenly
    collapsed = torch.zeros(20, 4)
    collapsed[:, 0] = 20  # each photo sure, all one class
    unsure = torch.zeros(20, 4)  # every photo uniform
    assert im_loss(diverse) < im_loss(collapsed)
    assert im_loss(diverse) < im_loss(unsure)
    assert float(im_loss(diverse)) == pytest.approx(-np.log(4), abs=1e-3)


def test_centroid_labels_follow_the_clusters_not_a_biased_head():
    x, y = classes([50, 50], dim=4, seed=4)
    z = torch.from_numpy(x)
    biased = torch.stack([z[:, 0] + 3.0, z[:, 1]], 1)  # the head's bias sends many of class 1 to class 0
    assert (centroid_labels(z, biased).numpy() == y).mean() > (biased.argmax(1).numpy() == y).mean()


def test_shot_lowers_its_loss_on_the_target_features_with_the_map_folded_into_one_head(head_and_val):
    head, _, _, _, _, z = head_and_val
    xt, _ = classes([100, 100, 100], shift=-1.2, seed=5)
    zt = z(xt)
    adapted = shot_head(head, zt)
    assert adapted.std_coef.shape == head.std_coef.shape
    assert np.array_equal(adapted.std_intercept, head.std_intercept)  # the head is kept; the features move
    before, after = (float(im_loss(torch.from_numpy(logits_of(h, zt)))) for h in (head, adapted))
    assert after < before  # what it optimises, read through the folded head


def test_shot_held_to_the_training_labels_moves_the_target_photos_without_losing_the_training_ones(head_and_val):
    """Target photos shifted far enough that source-free SHOT's map costs the training photos accuracy; the anchored
    map keeps them while still lowering the target photos' information-maximisation loss."""
    head, xs, ys, _, _, z = head_and_val
    xt, _ = classes([100, 100, 100], shift=-1.2, seed=5)
    zt = z(xt)
    free, anchored = shot_head(head, zt), shot_head(head, zt, anchor=(xs, ys))
    assert accuracy(anchored, xs, ys) >= accuracy(head, xs, ys) - 0.01
    assert accuracy(anchored, xs, ys) > accuracy(free, xs, ys)
    before, after = (float(im_loss(torch.from_numpy(logits_of(h, zt)))) for h in (head, anchored))
    assert after < before


def test_t3a_is_its_prototypes_as_a_linear_head(head_and_val):
    head, _, _, zv, yv, z = head_and_val
    xt, yt = classes([100, 100, 100], shift=-1.0, seed=6)
    zt = z(xt)
    adapted = t3a_head(head, zt, zv, yv)
    unit = zt / np.linalg.norm(zt, axis=1, keepdims=True)
    by_cosine = (unit @ adapted.std_coef.T).argmax(1)  # the photo's length only scales its logits
    assert np.array_equal(by_cosine, logits_of(adapted, zt).argmax(1))
    assert accuracy(adapted, zt, yt) > 0.8


def test_em_moves_the_biases_toward_the_target_class_mix(head_and_val):
    head, _, _, zv, yv, z = head_and_val
    xt, yt = classes([300, 20, 20], seed=7)  # one class dominates where the model is used
    zt = z(xt)
    adapted = em_head(head, zt, zv, yv, np.array([1 / 3, 1 / 3, 1 / 3]))
    assert adapted.std_intercept[0] - head.std_intercept[0] > adapted.std_intercept[1] - head.std_intercept[1]
    assert accuracy(adapted, zt, yt) >= accuracy(head, zt, yt)


def test_em_leaves_a_head_alone_when_the_mix_is_the_training_one(head_and_val):
    head, _, _, zv, yv, z = head_and_val
    xt, _ = classes([100, 100, 100], seed=8)
    adapted = em_head(head, z(xt), zv, yv, np.array([1 / 3, 1 / 3, 1 / 3]))
    assert np.abs(adapted.std_intercept - head.std_intercept).max() < 0.3


def test_a_refit_on_two_classes_keeps_both_rows(head_and_val):
    head, xs, ys, _, _, _ = head_and_val
    two = ys < 2
    refit = refit_head(head, xs[two], ys[two], 1.0)
    assert not np.allclose(refit.std_coef[0], refit.std_coef[1])
    assert refit.std_intercept[2] < -1e3  # a class with no photo never wins
    assert accuracy(refit, xs[two], ys[two]) > 0.9
