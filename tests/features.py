"""Synthetic features for the tests of methods that read cached features (head-level adaptation and its choice)."""

import numpy as np


def classes(n_per: list[int], dim: int = 8, shift: float = 0.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian classes around fixed means (class k at 3 * e_k), moved by `shift` along every axis."""
    rng = np.random.default_rng(seed)
    means = 3.0 * np.eye(len(n_per), dim)
    x = np.concatenate([means[k] + rng.normal(size=(n, dim)) for k, n in enumerate(n_per)]) + shift
    y = np.concatenate([np.full(n, k) for k, n in enumerate(n_per)])
    return x.astype(np.float32), y
