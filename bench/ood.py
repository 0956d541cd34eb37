"""Out-of-place photos: how many foreign photos a plant model calls out of place, and how many of its own, wrongly.

A plant model (`train --strategy auto` on the shared plant-leaves-15 train/, chosen on val/) fits its out-of-place rule
as Predict does (the training photos as the reference, the threshold at the 98th percentile of the val photos'
scores, ood.QUANTILE); then every photo of each set below is scored by that rule:
  plant test      the same collection's test/ photos: wrongly called out of place (goal: at most 5%);
  art paintings   pacs-photo-art target/test (people, animals, objects painted): goal at least 95%;
  EuroSAT tiles   eurosat-10 test/ (satellite tiles): goal at least 95%;
  PACS photos     pacs-photo-art source/val (photographs of people, animals, objects): goal at least 95%.
Shares with their 95% Wilson intervals, and the median score of each set against the threshold.
Run by hand:  .venv/bin/python bench/ood.py [--strategy auto] [--budget S]
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
os.environ.setdefault("TRANSFERLAB_HOME", tempfile.mkdtemp(prefix="tl-bench-"))

import numpy as np

from engine.data.imageio import IMAGE_EXTENSIONS
from engine.metrics import wilson
from engine.plan.config import TrainConfig
from engine.runs.store import RunStore
from engine.serve import ood
from engine.plan.trained import load_run_model
from engine.service.training import train

SHARED = ROOT.parent / "shared" / "datasets"
SETS = {
    "plant test": (SHARED / "plant-leaves-15" / "test", False),
    "art paintings": (SHARED / "pacs-photo-art" / "target" / "test", True),
    "EuroSAT tiles": (SHARED / "eurosat-10" / "test", True),
    "PACS photos": (SHARED / "pacs-photo-art" / "source" / "val", True),
}


def photos(folder: Path) -> list[str]:
    return sorted(str(p) for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--strategy", default="auto")
    ap.add_argument("--budget", type=float, default=None)
    args = ap.parse_args()
    cfg = TrainConfig.create(data=str(SHARED / "plant-leaves-15"), strategy=args.strategy, budget=args.budget)
    run = RunStore().create(cfg.to_dict())
    t0 = time.perf_counter()
    result = train(cfg, run)
    assert result.status == "finished", result.error
    model, spec, _ = load_run_model(run)
    t1 = time.perf_counter()
    rule = ood.run_rule(run, model, spec)
    print(
        f"plant model ({args.strategy}, {time.perf_counter() - t0:.0f} s, test accuracy "
        f"{result.test_accuracy:.3f}); rule fitted in {time.perf_counter() - t1:.0f} s on {rule.n_reference} "
        f"training photos and {rule.n_val} val photos: K = {rule.k}, threshold {rule.threshold:.3f}"
    )
    print(f"machine: {os.cpu_count()} CPU cores")
    print(f"{'set':15} {'photos':>6} {'called out of place':>20} {'95% interval':>13} {'median score':>12}  goal")
    for name, (folder, foreign) in SETS.items():
        paths = photos(folder)
        scores = rule.scores(ood.photo_features(model, spec, paths))
        flagged = int((scores > rule.threshold).sum())
        lo, hi = wilson(flagged, len(paths))
        goal = "at least 95%" if foreign else "at most 5%"
        print(
            f"{name:15} {len(paths):6d} {flagged / len(paths):20.1%} {lo:6.1%}-{hi:6.1%} {np.median(scores):12.3f}  "
            f"{goal}"
        )


if __name__ == "__main__":
    main()
