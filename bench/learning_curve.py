"""How many more photos, checked: the learning curve fitted on a quarter and on half of the training photos predicts
the accuracy with all of them; the truth is a linear head fitted on every training photo, scored on test/.

For each shared dataset: the check's features (tf_efficientnet_lite0, the last three stages and the final features)
of train/ and test/. A stratified random 25% (and 50%) of train/ (fixed seed) gets `learning_curve` (cross-validated
on that share alone); its law is read at the number of training photos in train/. Nothing is chosen on test/: it only
gives the truth, once.

Run by hand:  .venv/bin/python bench/learning_curve.py [--datasets plant-leaves-15,eurosat-10]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TRANSFERLAB_HOME", tempfile.mkdtemp(prefix="tl-curve-"))

import numpy as np

from engine.data.dataset import load_dataset
from engine.probe.check import read_taps
from engine.probe.curve import learning_curve
from engine.probe.linear import fit_linear, photo_features

SHARED = ROOT.parent / "shared" / "datasets"
BACKBONE = "tf_efficientnet_lite0"


def _share(y: np.ndarray, share: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate(
        [rng.permutation(np.flatnonzero(y == c))[: max(2, round(share * (y == c).sum()))] for c in np.unique(y)]
    )


def measure(name: str, seed: int) -> list[str]:
    ds = load_dataset(SHARED / name)
    items = ds.train + ds.test
    fs = photo_features([it.path for it in items], BACKBONE)
    x = fs.rows(np.arange(len(items)), read_taps(fs))
    y = np.array([it.label for it in items])
    n_train = len(ds.train)
    xtr, ytr, xte, yte = x[:n_train], y[:n_train], x[n_train:], y[n_train:]
    truth = fit_linear(xtr, ytr, xte, yte, len(ds.classes)).accuracy
    rows = []
    for share in (0.25, 0.5):
        picked = _share(ytr, share, seed)
        curve = learning_curve(xtr[picked], ytr[picked], ds.classes, seed=seed)
        expected = curve.expected(n_train) if curve else None
        if expected is None:
            rows.append(f"{name:16s} {share:5.0%} {len(picked):6d} {n_train:6d}   no law fitted   truth {truth:.3f}")
            continue
        guess, lo, hi = expected
        rows.append(
            f"{name:16s} {share:5.0%} {len(picked):6d} {n_train:6d} {guess:8.3f} ({lo:.3f}-{hi:.3f}) {truth:7.3f} "
            f"{100 * (guess - truth):+7.1f}"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--datasets", default="plant-leaves-15,eurosat-10")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print("curve fitted on a share of train/, read at all of train/; truth: a head on all of train/, scored on test/")
    print(
        f"{'dataset':16s} {'share':>5s} {'photos':>6s} {'train':>6s} {'expected (fold range)':>24s} "
        f"{'truth':>7s} {'error':>7s}"
    )
    for name in args.datasets.split(","):
        for row in measure(name, args.seed):
            print(row, flush=True)


if __name__ == "__main__":
    main()
