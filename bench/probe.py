"""Time to a recommendation: TransferLab's probe (cold and warm) against a plain PyTorch loop, same data and backbone.

The plain loop is the usual notebook recipe: torchvision ImageFolder + Resize/CenterCrop/ToTensor/Normalize, a
DataLoader, the model's forward pass under no_grad, and scikit-learn's LogisticRegression on the raw features.
Both use the same bundled weights. Run by hand:  .venv/bin/python bench/probe.py [--data DIR] [--reps 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TRANSFERLAB_HOME", tempfile.mkdtemp(prefix="tl-bench-"))

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from torchvision import datasets, transforms

from engine import paths
from engine.data import dataset as tl_data
from engine.data import decode as tl_decode
from engine.data.dataset import load_dataset
from engine.model.weights import create_backbone
from engine.probe.features import current_precision
from engine.probe.linear import probe

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets" / "plant-leaves-15"


def plain_loop(root: Path, backbone: str) -> float:
    model, _ = create_backbone(backbone)
    model.reset_classifier(0)
    model.eval()
    tf = transforms.Compose(
        [
            transforms.Resize(256, interpolation=transforms.InterpolationMode.BICUBIC),
            transforms.CenterCrop(224),
            transforms.ToTensor(),
            transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
        ]
    )

    def feats(split: str) -> tuple[np.ndarray, np.ndarray]:
        loader = torch.utils.data.DataLoader(datasets.ImageFolder(root / split, tf), batch_size=32, num_workers=2)
        xs, ys = [], []
        with torch.no_grad():
            for x, y in loader:
                xs.append(model(x).numpy())
                ys.append(y.numpy())
        return np.concatenate(xs), np.concatenate(ys)

    xtr, ytr = feats("train")
    xva, yva = feats("val")
    clf = LogisticRegression(max_iter=1000).fit(xtr, ytr)
    return float((clf.predict(xva) == yva).mean())


def cold_reset() -> None:
    shutil.rmtree(paths.cache_dir(), ignore_errors=True)
    tl_decode.DECODED.clear()
    tl_data._CHECKED.clear()


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=SHARED if SHARED.exists() else paths.SAMPLE)
    ap.add_argument("--backbone", default="tf_efficientnet_lite0")
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    rows: dict[str, list[tuple[float, float]]] = {
        "plain loop": [],
        "TransferLab cold": [],
        "TransferLab warm": [],
        "TransferLab warm, per-stage": [],
    }
    for _ in range(args.reps):
        rows["plain loop"].append(timed(lambda: plain_loop(args.data, args.backbone)))
        cold_reset()
        rows["TransferLab cold"].append(
            timed(lambda: probe(load_dataset(args.data), args.backbone, per_stage=False).accuracy)
        )
        rows["TransferLab warm"].append(
            timed(lambda: probe(load_dataset(args.data), args.backbone, per_stage=False).accuracy)
        )
        rows["TransferLab warm, per-stage"].append(
            timed(lambda: probe(load_dataset(args.data), args.backbone).accuracy)
        )
    plain = statistics.median(t for t, _ in rows["plain loop"])
    print(
        f"data {args.data}  backbone {args.backbone}  reps {args.reps}  threads {torch.get_num_threads()}  "
        f"precision {current_precision()}"
    )
    print(f"{'path':30} {'median s':>9} {'min s':>7} {'max s':>7} {'val acc':>8} {'speed-up':>9}")
    for name, runs in rows.items():
        ts = [t for t, _ in runs]
        med = statistics.median(ts)
        print(f"{name:30} {med:9.2f} {min(ts):7.2f} {max(ts):7.2f} {runs[0][1]:8.3f} {plain / med:8.1f}x")


if __name__ == "__main__":
    main()
