"""What each backbone family costs on this machine, and whether the planner knows it.

For one catalogue backbone per family (random weights: speed does not depend on their values), on a slice of the
bundled sample: the linear probe's extraction speed, its whole time (model building and the linear fit included) and
its extraction time; the planner's forecast of that extraction from the pace of its first sixth (as auto forecasts its
run a sixth into the first probe); a full fine-tuning epoch's speed (the second of two: the
first also pays one-time kernel set-up); and the
plan's estimate of that epoch beside the measured time. Prints a table; run by hand:

    .venv/bin/python bench/backbones.py [--train 120] [--val 60] [--names a,b]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.data.dataset import load_dataset
from engine.model.catalogue import input_spec
from engine.paths import SAMPLE
from engine.plan.budget import Pace, extract_seconds
from engine.plan.config import TrainConfig
from engine.plan.make import get_plan, save_planned
from engine.probe.features import feature_views
from engine.probe.linear import probe
from engine.runs.store import RunStore
from engine.train.loop import Trainer

FAMILIES = {
    "resnet18": "ResNet",
    "resnet50": "ResNet",
    "densenet121": "DenseNet",
    "mobilenetv3_large_100": "MobileNetV3",
    "efficientnet_b0": "EfficientNet",
    "tf_efficientnet_lite0": "EfficientNet-Lite",
    "convnext_tiny": "ConvNeXt",
    "vit_base_patch16_224": "ViT",
    "vit_small_patch14_dinov2.lvd142m": "DINOv2",
    "vit_base_patch16_clip_224.openai": "CLIP",
}


def slice_of_sample(root: Path, n_train: int, n_val: int) -> Path:
    """`n_train` / `n_val` photos spread over the sample's classes, as train/ and val/ folders."""
    classes = sorted(p for p in (SAMPLE / "train").iterdir() if p.is_dir())
    for split, n in (("train", n_train), ("val", n_val)):
        per = max(1, n // len(classes))
        for cls in classes:
            (root / split / cls.name).mkdir(parents=True)
            for f in sorted((SAMPLE / split / cls.name).iterdir())[:per]:
                shutil.copy(f, root / split / cls.name / f.name)
    return root


def measure(name: str, data: Path, sixth: Path, store: RunStore) -> dict:
    ds = load_dataset(str(data), test_fraction=0.0)
    early = probe(load_dataset(str(sixth), test_fraction=0.0), name, weights="none", per_stage=False)
    pace = Pace(name, input_spec(name).input_size[-1], early.images_per_s)
    forecast = extract_seconds(pace, name, input_spec(name), len(ds.train) + len(ds.val))
    t0 = time.perf_counter()
    p = probe(ds, name, weights="none", per_stage=False)
    probe_s = time.perf_counter() - t0
    cfg = TrainConfig.create(
        data=str(data),
        backbone=name,
        weights="none",
        strategy="full",
        head_epochs=0,
        finetune_epochs=2,
        views=1,
        test_fraction=0.0,
    )
    planned = get_plan(cfg)
    run = store.create(cfg.to_dict(), name)
    save_planned(run.path, planned)
    Trainer(cfg, run, planned=planned).fit()
    epoch = [e for e in run.events("epoch") if e.epoch == 2][0]  # the second: the first also warms kernels up
    extract_s = feature_views(len(ds.train) + len(ds.val)) * (len(ds.train) + len(ds.val)) / p.images_per_s
    return {
        "name": name,
        "probe_ips": p.images_per_s,
        "probe_s": probe_s,
        "probe_forecast_s": forecast,
        "extract_s": extract_s,
        "epoch_ips": epoch["images_per_s"],
        "epoch_s": epoch["seconds"],
        "epoch_planned_s": planned.plan.cost.finetune_epoch_s,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--train", type=int, default=120)
    ap.add_argument("--val", type=int, default=60)
    ap.add_argument("--names", default=",".join(FAMILIES))
    args = ap.parse_args()
    data = slice_of_sample(Path(tempfile.mkdtemp()) / "slice", args.train, args.val)
    sixth = slice_of_sample(Path(tempfile.mkdtemp()) / "sixth", args.train // 6, args.val // 6)
    store = RunStore(Path(tempfile.mkdtemp()) / "runs")
    ds = load_dataset(str(data), test_fraction=0.0)
    print(
        f"{len(ds.train)} train / {len(ds.val)} val photos of the bundled sample; random weights; "
        f"torch threads {torch.get_num_threads()}\n"
    )
    head = (
        f"{'family':18} {'backbone':34} {'probe img/s':>11} {'probe s':>8} {'extract s':>9} {'forecast':>9} "
        f"{'ratio':>6} {'epoch img/s':>11} {'epoch s':>8} {'planned':>8} {'ratio':>6}"
    )
    print(head)
    for name in args.names.split(","):
        r = measure(name, data, sixth, store)
        print(
            f"{FAMILIES.get(name, '?'):18} {name:34} {r['probe_ips']:11.1f} {r['probe_s']:8.1f} "
            f"{r['extract_s']:9.1f} {r['probe_forecast_s']:9.1f} {r['probe_forecast_s'] / r['extract_s']:6.2f} "
            f"{r['epoch_ips']:11.1f} "
            f"{r['epoch_s']:8.1f} {r['epoch_planned_s']:8.1f} {r['epoch_planned_s'] / r['epoch_s']:6.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
