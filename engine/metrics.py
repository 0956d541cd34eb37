"""Scoring: accuracy with its 95% interval, per-class accuracy and the confusion matrix, for every caller."""

from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import confusion_matrix


def wilson(correct: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a proportion: (low, high), 95% by default; (0, 1) when n is 0."""
    if n <= 0:
        return 0.0, 1.0
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def mcnemar(only_a: int, only_b: int) -> float:
    """McNemar's exact test, two-sided: the chance of a split of the discordant photos at least this uneven if two
    models were equally good (each photo that only one of them got right as likely to fall either way). `only_a`:
    photos only the first got right; `only_b`: only the second. 1.0 when none differ."""
    from scipy.stats import binom

    n = only_a + only_b
    if n == 0:
        return 1.0
    return float(min(1.0, 2.0 * binom.cdf(min(only_a, only_b), n, 0.5)))


def per_class_accuracy(y: np.ndarray, pred: np.ndarray, classes: list[str]) -> dict[str, float]:
    """Accuracy of each class among its true images; NaN for a class without images."""
    return {c: float((pred[y == i] == i).mean()) if (y == i).any() else float("nan") for i, c in enumerate(classes)}


def confusion(y: np.ndarray, pred: np.ndarray, n_classes: int) -> list[list[int]]:
    """Counts of (true class, predicted class), every class a row and a column even when absent."""
    return confusion_matrix(y, pred, labels=list(range(n_classes))).tolist()


def score(y: np.ndarray, pred: np.ndarray, classes: list[str]) -> dict:
    """Accuracy, its Wilson interval, n, per-class accuracy (None where a class has no image) and confusion."""
    y, pred = np.asarray(y), np.asarray(pred)
    correct = int((y == pred).sum())
    low, high = wilson(correct, len(y))
    return {
        "accuracy": correct / len(y) if len(y) else 0.0,
        "interval": [low, high],
        "n": int(len(y)),
        "per_class": {c: None if np.isnan(a) else a for c, a in per_class_accuracy(y, pred, classes).items()},
        "confusion": confusion(y, pred, len(classes)),
    }
