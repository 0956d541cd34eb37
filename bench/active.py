"""What to label next, checked: from 20% of the training photos labelled, 10% more at a time, chosen by the ranking
(`engine.probe.rank`) or at random, the held labels playing the person; test accuracy after each round.

For each shared dataset: the check's features (tf_efficientnet_lite0, the last three stages and the final features)
of train/ and test/. Each seed draws the first 20% of train/ at random (every class at least twice); each round a
linear head is fitted on the labelled photos (`fit_linear`, as `suggest` fits it), scored on test/, and the next 10%
of train/ is chosen from the rest: by `rank_pool` on the head's margins, or uniformly. val/ is not used: nothing is
chosen by accuracy here, the ranking's rule is fixed in advance. test/ is read after each round only to report.

The saving, for every budget from 40% of train/ to the last round: the fewest labels at which the ranking's mean
accuracy reaches random's with the whole budget spent. At 100% both hold every label and the saving is 0 unless the
ranking gets there earlier; the budgets below it are the question a person with photos left to label asks.

Run by hand:  .venv/bin/python bench/active.py [--datasets plant-leaves-15,eurosat-10] [--seeds 3] [--last 1.0]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TRANSFERLAB_HOME", tempfile.mkdtemp(prefix="tl-active-"))

import numpy as np

from engine.data.dataset import load_dataset
from engine.metrics import wilson
from engine.probe.check import read_taps
from engine.probe.linear import fit_linear, photo_features
from engine.probe.rank import margins, rank_pool

SHARED = ROOT.parent / "shared" / "datasets"
BACKBONE = "tf_efficientnet_lite0"
FIRST, STEP = 0.2, 0.1


def _first(y: np.ndarray, share: float, rng: np.random.Generator) -> np.ndarray:
    """A random `share` of the rows, every class at least twice (the head needs each class once to know it)."""
    floor = np.concatenate([rng.permutation(np.flatnonzero(y == c))[:2] for c in np.unique(y)])
    rest = rng.permutation(np.setdiff1d(np.arange(len(y)), floor))
    return np.concatenate([floor, rest[: max(0, round(share * len(y)) - len(floor))]])


def _rounds(x, y, test, n_classes: int, seed: int, ranked: bool, last: float) -> list[float]:
    """Test accuracy after each round, from 20% labelled to `last`, for one seed and one way of choosing."""
    rng = np.random.default_rng(seed)
    labelled = _first(y, FIRST, rng)
    step = round(STEP * len(y))
    accuracies = []
    while True:
        fit = fit_linear(x[labelled], y[labelled], np.concatenate([test[0], x]), np.zeros(0), n_classes)
        probs_test, probs_pool = fit.probabilities[: len(test[1])], fit.probabilities[len(test[1]) :]
        accuracies.append(float((probs_test.argmax(1) == test[1]).mean()))
        if len(labelled) >= round(last * len(y)) - 1:
            return accuracies
        pool = np.setdiff1d(np.arange(len(y)), labelled)
        n = min(step, len(pool))
        if ranked:
            picked = pool[rank_pool(x[pool], margins(probs_pool[pool]), n, seed)[:n]]
        else:
            picked = rng.choice(pool, n, replace=False)
        labelled = np.concatenate([labelled, picked])


def _saving(name: str, shares: np.ndarray, random: np.ndarray, ranked: np.ndarray, last: int, n: int) -> str:
    """One budget's line: random's mean accuracy with `shares[last]` of train/ labelled, and the fewest labels at
    which the ranking's mean reaches it."""
    goal = random[last]
    reached = np.flatnonzero(ranked[: last + 1] >= goal)
    if not len(reached):
        return f"{name:16s} budget {shares[last]:4.0%}: random {goal:.3f}; the ranking does not reach it in the budget"
    share = shares[reached[0]]
    return (
        f"{name:16s} budget {shares[last]:4.0%}: random {goal:.3f}; the ranking reaches it at {share:.0%} "
        f"({round(share * n)} labels vs {round(shares[last] * n)}): {1 - share / shares[last]:.0%} fewer labels"
    )


def measure(name: str, seeds: int, last: float) -> list[str]:
    ds = load_dataset(SHARED / name)
    items = ds.train + ds.test
    fs = photo_features([it.path for it in items], BACKBONE)
    x = fs.rows(np.arange(len(items)), read_taps(fs))
    y = np.array([it.label for it in items])
    n = len(ds.train)
    xtr, ytr, test = x[:n], y[:n], (x[n:], y[n:])
    runs = {}
    for way in ("random", "ranked"):
        start = time.perf_counter()
        runs[way] = np.array([_rounds(xtr, ytr, test, len(ds.classes), s, way == "ranked", last) for s in range(seeds)])
        runs[f"{way} s"] = (time.perf_counter() - start) / seeds
    shares = FIRST + STEP * np.arange(runs["random"].shape[1])
    rows = []
    for i, share in enumerate(shares):
        cells = []
        for way in ("random", "ranked"):
            acc = runs[way][:, i]
            lo, hi = wilson(round(acc.mean() * len(test[1])), len(test[1]))
            cells.append(f"{acc.mean():.3f} ({lo:.3f}-{hi:.3f}) [{acc.min():.3f}-{acc.max():.3f}]")
        rows.append(f"{name:16s} {share:5.0%} {round(share * n):6d}   {cells[0]:34s} {cells[1]:34s}")
    for last in range(2, len(shares)):  # every budget from 40% of train/ labelled
        rows.append(_saving(name, shares, runs["random"].mean(0), runs["ranked"].mean(0), last, n))
    rows.append(
        f"{name:16s} seconds per seed (fits and choices, features cached): random {runs['random s']:.1f}, "
        f"ranked {runs['ranked s']:.1f}"
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--datasets", default="plant-leaves-15,eurosat-10")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--last", type=float, default=1.0, help="the share of train/ labelled at the last round")
    args = parser.parse_args()
    print("test accuracy: mean over seeds (Wilson 95% of the mean on test/) [seeds' range]")
    print(f"{'dataset':16s} {'label':>5s} {'photos':>6s}   {'random':34s} {'ranked':34s}")
    for name in args.datasets.split(","):
        for row in measure(name, args.seeds, args.last):
            print(row, flush=True)


if __name__ == "__main__":
    main()
