"""engine.train.losses: class weights, the focal loss and class-balanced sampling."""

import numpy as np
import pytest
import torch
from torch import nn

from engine.train.losses import FocalLoss, class_weights, make_loss, sample_order


def test_class_weights_are_inverse_frequency_with_mean_one_and_zero_for_absent_classes():
    w = class_weights(torch.tensor([10, 30, 0]))
    assert w[2] == 0 and w[0] == pytest.approx(3 * w[1])
    assert w[:2].mean() == pytest.approx(1.0)


def test_focal_loss_without_focus_is_cross_entropy_and_down_weights_easy_photos():
    torch.manual_seed(0)
    logits, target = torch.randn(16, 4), torch.randint(0, 4, (16,))
    assert FocalLoss(gamma=0.0)(logits, target) == pytest.approx(nn.functional.cross_entropy(logits, target).item())
    easy = torch.tensor([[8.0, 0.0], [0.0, 8.0]])
    ratio = FocalLoss(gamma=2.0)(easy, torch.tensor([0, 1])) / nn.functional.cross_entropy(easy, torch.tensor([0, 1]))
    assert ratio < 1e-3  # a confident right answer adds almost nothing


def test_make_loss_picks_the_balance_policy():
    counts = torch.tensor([5, 20])
    assert isinstance(make_loss("focal", counts, 0.0), FocalLoss)
    weighted = make_loss("weighted-loss", counts, 0.1)
    assert isinstance(weighted, nn.CrossEntropyLoss) and weighted.weight is not None
    assert make_loss("none", counts, 0.0).weight is None


def test_balanced_sampling_draws_each_class_about_equally():
    labels = torch.tensor([0] * 90 + [1] * 10)
    order = sample_order(labels, torch.tensor([90, 10]), balanced=True, seed=0)
    share = (labels[order] == 1).float().mean().item()
    assert len(order) == 100 and 0.35 < share < 0.65
    assert sorted(sample_order(labels, torch.tensor([90, 10]), balanced=False, seed=0)) == list(range(100))
    assert np.array_equal(
        sample_order(labels, torch.tensor([90, 10]), True, 3), sample_order(labels, torch.tensor([90, 10]), True, 3)
    )
