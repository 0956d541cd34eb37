"""Accuracy on photos nothing was chosen on: for each shared dataset, train on train/, choose on val/, score test/.

Columns (EfficientNet-Lite0 and its bundled weights for the baselines, the backbone's own input contract):
  final probe   the linear probe on the final features (standardised logistic regression, C=1);
  stage probe   the linear probe after the stage that probes best on val;
  plain loop    the lesson's two-phase loop (bench/finetune.py: 10 head + 15 top-2 epochs), epoch chosen on val
                (--plain; about 17 minutes per dataset on 2 CPU cores);
  auto          `train --strategy auto` with its default budget, in a fresh TRANSFERLAB_HOME (nothing cached):
                test accuracy, its 95% Wilson interval, wall seconds, and what it chose.
Run by hand:  .venv/bin/python bench/accuracy.py [--plain] [--datasets plant-leaves-15,eurosat-10] [--budget S]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TRANSFERLAB_HOME", tempfile.mkdtemp(prefix="tl-bench-"))

import numpy as np

from engine.model.catalogue import input_spec
from engine.data.dataset import load_dataset
from engine.model.device import pick_device
from engine.model.taps import FINAL
from engine.model.weights import create_backbone
from engine.plan.config import TrainConfig
from engine.plan.stored import read_plan
from engine.probe.features import extract
from engine.probe.linear import fit_linear, probe
from engine.runs.store import RunStore
from engine.service.training import train

SHARED = ROOT.parent / "shared" / "datasets"
BACKBONE = "tf_efficientnet_lite0"


def probes(root: Path) -> dict:
    """Final-feature and best-stage probe, fitted on train, the stage chosen on val, scored on test."""
    ds = load_dataset(root)
    spec = input_spec(BACKBONE)
    p = probe(ds, BACKBONE, spec=spec)
    test = [it.path for it in ds.test]
    y_test = np.array([it.label for it in ds.test])
    with tempfile.TemporaryDirectory() as tmp:
        extract(create_backbone(BACKBONE)[0], spec, test, Path(tmp), views=1, device=pick_device())
        x_test = {t: np.load(Path(tmp) / (f"tap{t}.npy" if t != FINAL else "final.npy"))[:, 0] for t in p.features.taps}
    fs, n = p.features, len(ds.classes)

    def test_fit(tap: int):
        return fit_linear(fs.x("train", (tap,)), fs.y("train"), x_test[tap], y_test, n)

    best = p.best_stage
    final, stage = test_fit(FINAL), test_fit(best["tap"])
    return {
        "final": final.accuracy,
        "final_val": p.accuracy,
        "final_digest": digest(final.predictions),
        "stage": stage.accuracy,
        "stage_val": best["accuracy"],
        "stage_name": best["name"],
        "stage_digest": digest(stage.predictions),
    }


def digest(predictions) -> str:
    """The test photos' predicted classes, hashed: two runs with the same digest got the same photos right."""
    return hashlib.sha256(np.asarray(predictions, dtype=np.int64).tobytes()).hexdigest()[:12]


def auto(root: Path, budget: float | None) -> dict:
    """`train --strategy auto` from nothing cached."""
    home = tempfile.mkdtemp(prefix="tl-auto-")
    os.environ["TRANSFERLAB_HOME"] = home
    t0 = time.perf_counter()
    cfg = TrainConfig.create(data=str(root), strategy="auto", budget=budget)
    run = RunStore().create(cfg.to_dict())
    m = train(cfg, run)
    assert m.status == "finished", m.error
    plan = read_plan(run.path)
    return {
        "test": m.test_accuracy,
        "interval": m.test_interval,
        "val": m.best_val_acc,
        "seconds": time.perf_counter() - t0,
        "chose": f"{plan.backbone}: {plan.head.label}; best epoch {m.best_epoch} of {plan.phases.finetune_epochs}",
        "digest": digest(m.test_pred),
    }


def plain(root: Path) -> float:
    sys.path.insert(0, str(ROOT / "bench"))
    from finetune import plain_loop

    return plain_loop(root)[2]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", default="plant-leaves-15,eurosat-10")
    ap.add_argument("--plain", action="store_true", help="also run the plain two-phase loop (slow)")
    ap.add_argument("--budget", type=float, default=None)
    args = ap.parse_args()
    rows = []
    for name in args.datasets.split(","):
        root = SHARED / name
        r = {"data": name, **probes(root), **{f"auto_{k}": v for k, v in auto(root, args.budget).items()}}
        r["plain"] = plain(root) if args.plain else None
        rows.append(r)
        print(f"done {name}: {r}", file=sys.stderr, flush=True)
    print(
        f"test accuracy (train on train/, choose on val/, score test/); machine: {os.cpu_count()} CPU cores, "
        f"device {pick_device()}"
    )
    print(
        f"{'data':16} {'final probe':>11} {'stage probe':>20} {'plain loop':>10} {'auto':>6} "
        f"{'auto 95% interval':>18} {'auto s':>7}  auto chose"
    )
    for r in rows:
        lo, hi = r["auto_interval"]
        plain_txt = f"{r['plain']:.3f}" if r["plain"] is not None else "-"
        print(
            f"{r['data']:16} {r['final']:11.3f} {r['stage']:7.3f} ({r['stage_name']:>10}) {plain_txt:>10} "
            f"{r['auto_test']:6.3f} {f'{lo:.3f}-{hi:.3f}':>18} {r['auto_seconds']:7.0f}  {r['auto_chose']}"
        )
    print("test predictions' digests (the same digest: the same photos right)")
    for r in rows:
        print(f"{r['data']:16} final {r['final_digest']}  stage {r['stage_digest']}  auto {r['auto_digest']}")


if __name__ == "__main__":
    main()
