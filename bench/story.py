"""The story's own claim, measured: the same backbone and photos from scratch, as a linear probe, with the lesson's
two-phase recipe, and as auto picks; each trained on train/, chosen on val/, scored once on test/.

Arms (EfficientNet-Lite0 unless --backbone; each a run of the engine in a fresh TRANSFERLAB_HOME, nothing cached):
  auto                 `--strategy auto` with its default budget;
  scratch, auto's time random initialisation, as many epochs as fit in auto's measured seconds at the long
                       scratch run's measured pace;
  scratch, long        random initialisation, --long-epochs epochs;
  probe                the frozen pretrained network with a linear head on its final features (epoch 0 only);
  two-phase recipe     the lesson's recipe: the head trained alone, then the top two layer groups with
                       discriminative rates (`--strategy top-k`, the engine's default epochs for it).
Each row: test accuracy, its 95% Wilson interval, test photos, wall seconds and epochs trained.

Run by hand:  .venv/bin/python bench/story.py [--datasets plant-leaves-15,eurosat-10] [--long-epochs 8]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TRANSFERLAB_HOME", tempfile.mkdtemp(prefix="tl-story-"))

from engine.model.device import pick_device
from engine.plan.config import TrainConfig
from engine.runs.store import RunStore
from engine.service.training import train

SHARED = ROOT.parent / "shared" / "datasets"


def run_arm(cfg: TrainConfig) -> dict:
    """Trains `cfg` from nothing cached and returns its stored test result, seconds and epochs."""
    os.environ["TRANSFERLAB_HOME"] = tempfile.mkdtemp(prefix="tl-story-")
    t0 = time.perf_counter()
    run = RunStore().create(cfg.to_dict())
    m = train(cfg, run)
    if m.status != "finished":
        raise SystemExit(f"{cfg.optim.strategy} on {cfg.data.path} ended {m.status}: {m.error}")
    epochs = [e.epoch for e in run.events("epoch")]
    ends = [e.t for e in run.events("epoch") if e.epoch > 0]
    starts = [run.events("phase_started")[0].t, *ends[:-1]] if ends else []
    epoch_s = statistics.median(b - a for a, b in zip(starts, ends)) if ends else 0.0
    return {
        "epoch_s": epoch_s,
        "fixed_s": m.seconds - epoch_s * len(ends),
        "test": m.test_accuracy,
        "interval": m.test_interval,
        "n": m.test_n,
        "seconds": time.perf_counter() - t0,
        "epochs": max(epochs or [0]),
        "best_epoch": m.best_epoch,
        "backbone": run.read_json("plan.json")["backbone"],
    }


def epochs_within(long: dict, seconds: float) -> int:
    """Scratch epochs that fit in `seconds`, at the pace the long scratch run measured: its time outside the epochs
    (setup, scoring) and the median time of one epoch. (The plan's own forecast cannot be used: a scratch plan has no
    probe to measure the pace from, so it costs its epochs at 0 s; issue 24.)"""
    return max(1, math.floor((seconds - long["fixed_s"]) / long["epoch_s"]))


def story(data: Path, backbone: str, long_epochs: int) -> list[tuple[str, dict]]:
    common = dict(data=str(data), backbone=backbone)
    rows = [("auto", run_arm(TrainConfig.create(**common, strategy="auto")))]
    long = run_arm(TrainConfig.create(**common, strategy="scratch", weights="none", finetune_epochs=long_epochs))
    n = epochs_within(long, rows[0][1]["seconds"])
    rows.append(
        (
            "scratch, auto's time",
            run_arm(TrainConfig.create(**common, strategy="scratch", weights="none", finetune_epochs=n)),
        )
    )
    rows.append(("scratch, long", long))
    rows.append(("probe", run_arm(TrainConfig.create(**common, strategy="feature-extraction", head_epochs=0))))
    rows.append(("two-phase recipe", run_arm(TrainConfig.create(**common, strategy="top-k", top_k=2))))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", default="plant-leaves-15,eurosat-10")
    ap.add_argument("--backbone", default="tf_efficientnet_lite0")
    ap.add_argument("--long-epochs", type=int, default=8)
    args = ap.parse_args()
    print(
        f"train on train/, choose on val/, score test/ once; {args.backbone}; machine: {os.cpu_count()} CPU cores, "
        f"device {pick_device()}"
    )
    print(
        f"{'data':16} {'arm':22} {'test':>6} {'95% interval':>13} {'photos':>6} {'seconds':>8} {'epochs':>6}  backbone"
    )
    for name in args.datasets.split(","):
        for arm, r in story(SHARED / name, args.backbone, args.long_epochs):
            lo, hi = r["interval"]
            print(
                f"{name:16} {arm:22} {r['test']:6.3f} {f'{lo:.3f}-{hi:.3f}':>13} {r['n']:6d} {r['seconds']:8.0f} "
                f"{r['epochs']:6d}  {r['backbone']}",
                flush=True,
            )


if __name__ == "__main__":
    main()
