"""Domain adaptation's two losses on the head's input features, for unlabelled photos from where the model is used.

* DANN (Ganin & Lempitsky 2015, "Unsupervised Domain Adaptation by Backpropagation"): a small domain classifier
  learns to tell source features from target features; a gradient reversal layer between the features and it makes
  the layers below learn features it cannot tell apart. Its weight ramps from 0 to its strength as
  `2 / (1 + exp(-10 p)) - 1` over the training progress `p`, as in the paper, so the early, noisy domain classifier
  does not wreck the pretrained features.
* MMD (Long et al. 2015, "Learning Transferable Features with Deep Adaptation Networks"): the multi-kernel maximum
  mean discrepancy between a source and a target batch of features, a sum of Gaussian kernels whose bandwidths are
  spread around the batch's mean squared distance; the same ramp.

Both act on the features the linear head reads (standardised as the head standardises them), so they change the
layers that train below the head; with a frozen backbone they have nothing to move.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

ADAPT_METHODS = ("none", "dann", "mmd")
MMD_SCALES = (0.25, 0.5, 1.0, 2.0, 4.0)  # kernel bandwidths, as multiples of the batch's mean squared distance


class _GradReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: float) -> torch.Tensor:
        ctx.weight = weight
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.weight * grad, None


def grad_reverse(x: torch.Tensor, weight: float) -> torch.Tensor:
    """The identity going forward; going back, the gradient times `-weight`."""
    return _GradReverse.apply(x, weight)


def ramp(progress: float, strength: float) -> float:
    """The adaptation loss's weight at training progress `progress` (0 → 1): DANN's `2 / (1 + exp(-10 p)) - 1`,
    times `strength`."""
    p = min(1.0, max(0.0, progress))
    return strength * (2.0 / (1.0 + math.exp(-10.0 * p)) - 1.0)


def mk_mmd(source: torch.Tensor, target: torch.Tensor, scales: tuple[float, ...] = MMD_SCALES) -> torch.Tensor:
    """The multi-kernel MMD² between two batches of features (the biased estimate, ≥ 0): near 0 for two samples of
    one distribution, larger the further apart they are."""
    z = torch.cat([source, target]).float()
    d = torch.cdist(z, z).pow(2)
    n = len(z)
    bandwidth = d.detach().sum() / max(1, n * n - n)  # the mean squared distance between two different rows
    k = sum(torch.exp(-d / (bandwidth * s).clamp_min(1e-12)) for s in scales)
    m = len(source)
    return k[:m, :m].mean() + k[m:, m:].mean() - 2 * k[:m, m:].mean()


class DomainClassifier(nn.Module):
    """DANN's domain classifier: features → hidden layer → one logit (target vs source)."""

    def __init__(self, in_features: int, hidden: int = 256):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(), nn.Dropout(0.5), nn.Linear(hidden, 1))

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return self.net(f.float()).squeeze(1)


class Adaptation(nn.Module):
    """The adaptation loss of one run: `loss(source_features, target_features, progress)` returns the weighted loss
    and what the Train page plots of it (the domain loss or the MMD, the domain classifier's accuracy).

    Args:
        method: "dann" or "mmd".
        in_features: width of the head's input.
        strength: the loss's weight once its ramp is complete.
    """

    def __init__(self, method: str, in_features: int, strength: float = 1.0):
        super().__init__()
        if method not in ADAPT_METHODS[1:]:
            raise ValueError(f"adaptation {method!r} is not one of {', '.join(ADAPT_METHODS[1:])}")
        self.method, self.strength = method, strength
        self.domain = DomainClassifier(in_features) if method == "dann" else None

    def loss(
        self, source: torch.Tensor, target: torch.Tensor, progress: float
    ) -> tuple[torch.Tensor, dict[str, float]]:
        weight = ramp(progress, self.strength)
        if self.domain is None:
            mmd = mk_mmd(source, target)
            return weight * mmd, {"mmd": float(mmd.detach()), "adapt_weight": weight}
        f = grad_reverse(torch.cat([source, target]).float(), weight)
        logit = self.domain(f)
        is_target = torch.cat([torch.zeros(len(source)), torch.ones(len(target))]).to(logit.device)
        loss = F.binary_cross_entropy_with_logits(logit, is_target)
        right = ((logit > 0).float() == is_target).float().mean()
        return loss, {"domain_loss": float(loss.detach()), "domain_acc": float(right), "adapt_weight": weight}
