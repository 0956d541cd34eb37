"""Losses and sampling for imbalanced data: class-weighted or focal loss, class-balanced sampling."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def class_weights(counts: torch.Tensor) -> torch.Tensor:
    """Inverse-frequency weights normalised to mean 1 (absent classes get 0)."""
    w = torch.where(counts > 0, 1.0 / counts.clamp(min=1).float(), torch.zeros_like(counts, dtype=torch.float))
    return w * (counts > 0).sum() / w.sum()


class FocalLoss(nn.Module):
    """Focal loss (Lin et al. 2017): down-weights easy examples; optional class weights."""

    def __init__(self, gamma: float = 2.0, weight: torch.Tensor | None = None, label_smoothing: float = 0.0):
        super().__init__()
        self.gamma, self.weight, self.label_smoothing = gamma, weight, label_smoothing

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        ce = F.cross_entropy(logits, target, reduction="none", label_smoothing=self.label_smoothing)
        pt = torch.exp(-F.cross_entropy(logits, target, reduction="none"))
        loss = (1 - pt) ** self.gamma * ce
        if self.weight is not None:
            loss = loss * self.weight.to(logits.device)[target]
        return loss.mean()


def make_loss(balance: str, counts: torch.Tensor, label_smoothing: float) -> nn.Module:
    if balance == "focal":
        return FocalLoss(2.0, class_weights(counts), label_smoothing)
    weight = class_weights(counts) if balance == "weighted-loss" else None
    return nn.CrossEntropyLoss(weight=weight, label_smoothing=label_smoothing)


def sample_order(labels: torch.Tensor, counts: torch.Tensor, balanced: bool, seed: int) -> np.ndarray:
    """One epoch's order: a permutation, or (balanced) draws with replacement at probability 1 / class count."""
    rng = np.random.default_rng(seed)
    n = len(labels)
    if not balanced:
        return rng.permutation(n)
    p = (1.0 / counts.float()[labels]).numpy()
    return rng.choice(n, size=n, replace=True, p=p / p.sum())
