"""Which photos to label next: the pool ranked by how much a label would teach the head, spread over what it holds.

The rule (Cluster-Margin, Citovsky et al., NeurIPS 2021, in its one-round form):

1. **Uncertainty.** A linear head fitted on every labelled photo (the check's features: the last three stages and the
   final features) gives each pool photo its class probabilities; the pool's photos are none of the head's, so the
   probabilities are out of fold. A photo's margin is its likeliest class's probability minus the second's: a small
   margin is a photo the head hesitates on, between two classes.
2. **Diversity.** The `CANDIDATES` times `n` photos of smallest margin are grouped into `n` clusters (k-means on their
   features, standardised and scaled to unit length); each cluster gives its photo of smallest margin. Without this,
   the first 50 could be 50 photos of the one pair of classes the head confuses most.
3. **Order.** The chosen photos by margin, smallest first; the rest of the pool after them, by margin.

Measured in bench/active.py: from 20% of the shared training photos labelled, 10% more at a time by this ranking or
at random (results-active-cpu.txt).
"""

from __future__ import annotations

import numpy as np
from sklearn.cluster import KMeans

CANDIDATES = 3  # the clusters are drawn from this many times n photos of smallest margin


def margins(probs: np.ndarray) -> np.ndarray:
    """The likeliest class's probability minus the second likeliest's, per row (0: a coin toss between two)."""
    top = np.sort(probs, axis=1)[:, -2:]
    return (top[:, 1] - top[:, 0]).astype(np.float32)


def unit_rows(x: np.ndarray) -> np.ndarray:
    """`x` standardised per column and each row scaled to unit length: what k-means measures distances on."""
    z = (x - x.mean(0)) / (x.std(0) + 1e-6)
    return z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)


def rank_pool(x: np.ndarray, margin: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """Indices of every pool row, the `n` to label first at the front (one per cluster of the uncertain ones, by
    margin), then the rest by margin.

    Args:
        x: (N, D) features of the pool's photos.
        margin: (N,) their margins (`margins`).
        n: How many photos the person will label next.
        seed: The k-means seed.
    """
    by_margin = np.argsort(margin, kind="stable")
    n = min(n, len(margin))
    candidates = by_margin[: CANDIDATES * n]
    if len(candidates) <= n or n < 2:
        return by_margin
    clusters = KMeans(n_clusters=n, n_init=1, random_state=seed).fit_predict(unit_rows(x[candidates]))
    first: dict[int, int] = {}
    for row, cluster in zip(candidates, clusters):  # candidates run by margin: a cluster's first is its smallest
        first.setdefault(int(cluster), int(row))
    chosen = sorted(first.values(), key=lambda r: margin[r])
    taken = set(chosen)
    return np.array(chosen + [int(r) for r in by_margin if r not in taken])
