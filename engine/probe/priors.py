"""The class mix of new photos, estimated from the model's probabilities alone: EM re-estimation of the class priors
(Saerens, Latinne & Decaestecker, Neural Computation 2002).

A calibrated model's probabilities carry the class mix it was trained under. When the new photos come in another mix
(a farm where one disease dominates), counting the predicted classes drifts toward the training mix: the photos the
model hesitates on go to the classes it saw most. EM alternates two steps until the mix stops moving: each photo's
probabilities re-weighted by the ratio of the current mix to the training mix (and normalised), then the mix as the
mean of those. It assumes the photos of each class look as they did in training (label shift, not a change of
look); the probabilities must be calibrated (the run's are: the temperature fitted on val is in the saved model).
"""

from __future__ import annotations

import numpy as np

EM_STEPS = 1000  # at most; it stops once no class's share moves by more than EM_TOL
EM_TOL = 1e-6


def reweighted(probs: np.ndarray, train_mix: np.ndarray, mix: np.ndarray) -> np.ndarray:
    """The probabilities a model trained under `train_mix` would give under `mix`: each scaled by the ratio of the
    two, then normalised per photo."""
    w = probs * (mix / np.maximum(train_mix, 1e-12))
    return w / np.maximum(w.sum(1, keepdims=True), 1e-12)


def em_mix(probs: np.ndarray, train_mix: np.ndarray) -> np.ndarray:
    """The class mix of the photos whose probabilities are `probs` (N, C), by EM from `train_mix` (C,)."""
    train_mix = np.asarray(train_mix, dtype=np.float64) / np.sum(train_mix)
    mix = train_mix.copy()
    for _ in range(EM_STEPS):
        new = reweighted(np.asarray(probs, dtype=np.float64), train_mix, mix).mean(0)
        if np.max(np.abs(new - mix)) < EM_TOL:
            return new
        mix = new
    return mix


def train_mix(balance: str, labels: list[int], n_classes: int) -> np.ndarray:
    """The class mix a model learnt under: the training photos' shares, or even when the run balanced the classes
    (a balanced sampler or a weighted loss)."""
    if balance in ("sampler", "weighted-loss"):
        return np.full(n_classes, 1.0 / n_classes)
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    return counts / counts.sum()
