"""How many more photos, checked: the learning curve fitted on a quarter and on half of the training photos predicts
the accuracy with all of them; the truth is a linear head fitted on every training photo, scored on test/.

For each shared dataset: the check's features (tf_efficientnet_lite0, the last three stages and the final features)
of train/ and test/. A stratified random 25% (and 50%) of train/ (one draw per seed) gets `learning_curve`
(cross-validated on that share alone); its law is read at the number of training photos in train/. Nothing is chosen
on test/: it only gives the truth, once. Each draw is a row; the last lines give each (set, share)'s mean and largest
error over the draws, since one draw's curve moves by points with the photos drawn.

`--on-val` makes val/ the truth instead (test/ is not read), which is how the curve's folds were chosen: `--folds
3x1,5x1,3x3 --seeds 0,1,2,3,4` compares one pass of 3 folds, one of 5, and 3 folds drawn three times.

`--cost eurosat-large` times the curve as `engine check` runs it on all of a set's train/ (features cached first,
their extraction timed apart): its cost at scale, no accuracy read.

Run by hand:  .venv/bin/python bench/learning_curve.py [--datasets plant-leaves-15,eurosat-10] [--seeds 0,1,2]
              [--on-val --folds 3x1,5x1,3x3] [--cost eurosat-large]
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
os.environ.setdefault("TRANSFERLAB_HOME", tempfile.mkdtemp(prefix="tl-curve-"))

import numpy as np

from engine.data.dataset import load_dataset
from engine.probe.check import read_taps
from engine.probe import curve as curves
from engine.probe.curve import learning_curve
from engine.probe.linear import fit_linear, photo_features

SHARED = ROOT.parent / "shared" / "datasets"
BACKBONE = "tf_efficientnet_lite0"


def _share(y: np.ndarray, share: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate(
        [rng.permutation(np.flatnonzero(y == c))[: max(2, round(share * (y == c).sum()))] for c in np.unique(y)]
    )


def features(name: str, truth_split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """The check's features and labels of train/ and of the split that gives the truth."""
    ds = load_dataset(SHARED / name)
    items = ds.train + (ds.val if truth_split == "val" else ds.test)
    fs = photo_features([it.path for it in items], BACKBONE)
    x = fs.rows(np.arange(len(items)), read_taps(fs))
    y = np.array([it.label for it in items])
    n = len(ds.train)
    return x[:n], y[:n], x[n:], y[n:], ds.classes


def measure(name: str, seeds: list[int], truth_split: str, folds: str) -> tuple[list[str], dict[float, list[float]]]:
    """Each draw's row and the errors by share, with the curve's folds set to `folds` ("3x3": 3 folds, 3 passes)."""
    xtr, ytr, xte, yte, classes = features(name, truth_split)
    curves.CURVE_FOLDS, curves.CURVE_REPEATS = (int(v) for v in folds.split("x"))
    n_train = len(ytr)
    truth = fit_linear(xtr, ytr, xte, yte, len(classes)).accuracy
    rows, errors = [], {0.25: [], 0.5: []}
    for seed, share in [(seed, share) for seed in seeds for share in errors]:
        picked = _share(ytr, share, seed)
        curve = learning_curve(xtr[picked], ytr[picked], classes, seed=seed)
        expected = curve.expected(n_train) if curve else None
        if expected is None:
            rows.append(f"{name:16s} {seed:4d} {share:5.0%} {len(picked):6d} {n_train:6d}   no law   truth {truth:.3f}")
            continue
        guess, lo, hi = expected
        errors[share].append(100 * (guess - truth))
        rows.append(
            f"{name:16s} {seed:4d} {share:5.0%} {len(picked):6d} {n_train:6d} {guess:8.3f} ({lo:.3f}-{hi:.3f}) "
            f"{truth:7.3f} {errors[share][-1]:+7.1f}"
        )
    return rows, errors


def cost(name: str) -> str:
    """Seconds to cache the check's features of a set's train/, and seconds of its learning curve on all of them."""
    ds = load_dataset(SHARED / name)
    t0 = time.perf_counter()
    fs = photo_features([it.path for it in ds.train], BACKBONE)
    x = fs.rows(np.arange(len(ds.train)), read_taps(fs))
    y = np.array([it.label for it in ds.train])
    t1 = time.perf_counter()
    curve = learning_curve(x, y, ds.classes)
    t2 = time.perf_counter()
    law = "a law" if curve is not None and curve.law is not None else "no law"
    return (
        f"{name}: {len(y):,} training photos, {x.shape[1]:,} features; features cached in {t1 - t0:,.0f} s; "
        f"learning curve ({curves.CURVE_FOLDS} folds x {curves.passes(len(y))} pass(es)) in {t2 - t1:,.1f} s, {law}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--datasets", default="plant-leaves-15,eurosat-10")
    parser.add_argument("--seeds", default="0,1,2", help="one random share of train/ per seed")
    parser.add_argument("--on-val", action="store_true", help="val/ gives the truth (test/ is not read)")
    parser.add_argument("--folds", default=f"{curves.CURVE_FOLDS}x{curves.CURVE_REPEATS}", help="e.g. 3x1,5x1,3x3")
    parser.add_argument("--cost", default="", help="a shared set whose curve on all of train/ is timed (no accuracy)")
    args = parser.parse_args()
    if args.cost:
        print(cost(args.cost), flush=True)
        return
    seeds = [int(v) for v in args.seeds.split(",")]
    split = "val" if args.on_val else "test"
    print(
        f"curve fitted on a share of train/, read at all of train/; truth: a head on all of train/, scored on {split}/"
    )
    print(
        f"{'dataset':16s} {'seed':>4s} {'share':>5s} {'photos':>6s} {'train':>6s} {'expected (fold range)':>24s} "
        f"{'truth':>7s} {'error':>7s}"
    )
    summary = []
    for name, folds in [(name, folds) for name in args.datasets.split(",") for folds in args.folds.split(",")]:
        rows, errors = measure(name, seeds, split, folds)
        print(f"folds {folds}\n" + "\n".join(rows), flush=True)
        summary += [
            f"{name:16s} {share:5.0%} folds {folds}: mean error {np.mean(e):+.1f}, largest {np.max(np.abs(e)):.1f} "
            f"({len(e)} draws)"
            for share, e in errors.items()
            if e
        ]
    print("\n".join(summary))


if __name__ == "__main__":
    main()
