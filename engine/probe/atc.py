"""Average Thresholded Confidence (ATC; Garg, Balakrishnan, Lipton, Neyshabur & Sedghi, ICLR 2022): the accuracy
expected on unlabelled photos from the model's confidences alone. On val, where the labels are known, a threshold is
fitted so that the share of val photos above it equals the val accuracy; on the new photos the estimate is the share
above it. `engine.serve.estimate` applies it to a run's model and a folder; `engine.plan.target_head` to candidate
heads on cached features.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

BOOTSTRAP = 500  # resamples of val and of the new photos for the interval


def atc_threshold(confidence: np.ndarray, correct: np.ndarray) -> float:
    """The confidence threshold at which the share of val photos strictly above it is the val accuracy."""
    n, right = len(confidence), int(np.sum(correct))
    ordered = np.sort(np.asarray(confidence, dtype=np.float64))
    return -np.inf if right >= n else float(ordered[n - right - 1])


def atc(confidence: np.ndarray, correct: np.ndarray, new: np.ndarray) -> float:
    """The accuracy expected on photos of confidences `new`: their share above the threshold fitted on val."""
    return float(np.mean(np.asarray(new) > atc_threshold(confidence, correct)))


Scores = tuple[np.ndarray, np.ndarray, np.ndarray]  # a model's val confidences, whether each val answer is right, and
# its confidences on the new photos


def _bootstrap(
    n_val: int, n_new: int, statistic: Callable[[np.ndarray, np.ndarray], float], draws: int, seed: int
) -> tuple[float, float]:
    """The 95% interval of `statistic(val rows, new rows)` over `draws` resamples of the val and the new photos."""
    rng = np.random.default_rng(seed)
    found = []
    for _ in range(draws):
        v = rng.integers(0, n_val, n_val)
        t = rng.integers(0, n_new, n_new)
        found.append(statistic(v, t))
    low, high = np.percentile(found, [2.5, 97.5])
    return float(low), float(high)


def atc_interval(
    confidence: np.ndarray, correct: np.ndarray, new: np.ndarray, draws: int = BOOTSTRAP, seed: int = 0
) -> tuple[float, float]:
    """The 95% interval of `atc`, resampling the val photos and the new photos together."""
    confidence, correct, new = np.asarray(confidence), np.asarray(correct), np.asarray(new)
    return _bootstrap(len(confidence), len(new), lambda v, t: atc(confidence[v], correct[v], new[t]), draws, seed)


def atc_gain_interval(a: Scores, b: Scores, draws: int = BOOTSTRAP, seed: int = 0) -> tuple[float, float]:
    """The 95% interval of `atc` of model `a` minus `atc` of model `b` on the same val and new photos, each draw
    resampling the photos once for both (a paired bootstrap: what moves both estimates together, such as the few val
    mistakes a threshold rests on, cancels in the difference)."""
    a, b = tuple(map(np.asarray, a)), tuple(map(np.asarray, b))

    def gain(v: np.ndarray, t: np.ndarray) -> float:
        return atc(a[0][v], a[1][v], a[2][t]) - atc(b[0][v], b[1][v], b[2][t])

    return _bootstrap(len(a[0]), len(a[2]), gain, draws, seed)
