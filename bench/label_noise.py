"""Likely label errors, measured: 5% of the training labels flipped at random, found by `engine check`, and what
excluding them is worth.

For each shared dataset: a copy whose train split has 5% of its photos moved to another class (fixed seed, each
flip to a different class, chosen uniformly), val and test as they are. `check_photos` ranks every labelled photo;
the table gives the share of the flipped photos in the top 5% of the ranking (recall at that cut) and the share of
that top 5% that was flipped (precision). Then auto (default budget) three times, each scored once on the test
split: on the clean labels, on the noisy ones, and on the noisy ones with every flagged photo excluded (a person's
"exclude" decision for each).

Run by hand:  .venv/bin/python bench/label_noise.py [--datasets plant-leaves-15,eurosat-10] [--no-auto]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TRANSFERLAB_HOME", tempfile.mkdtemp(prefix="tl-noise-"))

import numpy as np

from engine.data.dataset import load_dataset
from engine.data.decisions import Decision, save_decisions
from engine.model.device import pick_device
from engine.plan.config import TrainConfig
from engine.probe.check import check_photos
from engine.runs.store import RunStore
from engine.service.training import train

SHARED = ROOT.parent / "shared" / "datasets"
BACKBONE = "tf_efficientnet_lite0"
NOISE = 0.05


def noisy_copy(src: Path, dst: Path, seed: int = 0) -> set[str]:
    """`src` copied to `dst` with `NOISE` of its train photos moved to another class; returns their new paths."""
    shutil.copytree(src, dst)
    files = sorted((dst / "train").rglob("*.*"))
    classes = sorted(p.name for p in (dst / "train").iterdir())
    rng = np.random.default_rng(seed)
    flipped = set()
    for i in sorted(rng.choice(len(files), int(round(NOISE * len(files))), replace=False)):
        f = files[i]
        other = rng.choice([c for c in classes if c != f.parent.name])
        target = dst / "train" / other / f"flipped-{f.name}"
        shutil.move(f, target)
        flipped.add(str(target))
    return flipped


def auto_test(data: Path) -> tuple[float, list[float]]:
    cfg = TrainConfig.create(data=str(data), strategy="auto")
    m = train(cfg, RunStore().create(cfg.to_dict()))
    assert m.status == "finished", m.error
    return m.test_accuracy, m.test_interval


def measure(name: str, work: Path, with_auto: bool) -> dict:
    clean = SHARED / name
    noisy = work / name
    flipped = noisy_copy(clean, noisy)
    ds = load_dataset(noisy)
    report = check_photos(ds, BACKBONE)
    cut = max(1, round(NOISE * len(report.label_issues)))
    top = {i.path for i in report.label_issues[:cut]}
    row = {
        "data": name,
        "labelled": len(report.label_issues),
        "flipped": len(flipped),
        "recall": len(top & flipped) / len(flipped),
        "precision": len(top & flipped) / cut,
        "flagged": len(report.flagged),
        "flagged_flipped": len({i.path for i in report.flagged} & flipped),
    }
    if with_auto:
        row["auto_clean"] = auto_test(clean)
        row["auto_noisy"] = auto_test(noisy)
        save_decisions(ds, [Decision(i.path, "exclude") for i in report.flagged])
        row["auto_excluded"] = auto_test(noisy)
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", default="plant-leaves-15,eurosat-10")
    ap.add_argument("--no-auto", action="store_true", help="only the ranking, no training")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="noisy-"))
    rows = []
    for name in args.datasets.split(","):
        rows.append(measure(name, work, not args.no_auto))
        print(f"done {rows[-1]}", file=sys.stderr, flush=True)
    print(
        f"5% of train labels flipped (seed 0); ranking by confident learning on 5-fold out-of-fold probabilities of "
        f"{BACKBONE}'s last three stages and final features; {os.cpu_count()} CPU cores, device {pick_device()}"
    )
    print(
        f"{'data':16} {'labelled':>8} {'flipped':>7} {'recall@5%':>9} {'precision@5%':>12} "
        f"{'flagged (of them flipped)':>26}"
    )
    for r in rows:
        print(
            f"{r['data']:16} {r['labelled']:8d} {r['flipped']:7d} {r['recall']:9.2f} {r['precision']:12.2f} "
            f"{r['flagged']:>15d} ({r['flagged_flipped']})"
        )
    if not args.no_auto:
        print("test accuracy of auto (95% interval): clean labels | 5% flipped | flipped, the flagged photos excluded")
        for r in rows:
            cells = [
                f"{a:.3f} ({i[0]:.3f}-{i[1]:.3f})" for a, i in (r["auto_clean"], r["auto_noisy"], r["auto_excluded"])
            ]
            print(f"{r['data']:16} " + " | ".join(cells))


if __name__ == "__main__":
    main()
