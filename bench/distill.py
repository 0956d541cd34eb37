"""Distillation: a student trained from a teacher's answers against the same student trained on labels alone.

For each dataset, in one fresh TRANSFERLAB_HOME: the teacher (auto's model by default; `--teacher-strategy` and
`--teacher BACKBONE` to fix it), then the student (`--student`, `--student-strategy`) twice with the same seed, once
on the labels alone and once with `--distill-from` the teacher (the default weight and temperature). Train on train/,
choose the epoch on val/, report test/ once at the end: accuracy with its 95% Wilson interval, parameters, wall
seconds on this machine.

Run by hand:  .venv/bin/python bench/distill.py [--datasets plant-leaves-15] [--teacher tf_efficientnet_lite2]
              [--teacher-strategy auto]
              [--student tf_efficientnet_lite0] [--student-weights auto|none] [--epochs N]
              [--student-params N]  (a parameter budget: the student's backbone cut to fit, engine.plan.param_budget)
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

from engine.model.taps import cut_params
from engine.plan.config import TrainConfig
from engine.plan.stored import read_plan
from engine.runs.store import RunStore
from engine.serve.compare import paired_test
from engine.service.training import train

SHARED = ROOT.parent / "shared" / "datasets"


def trained(name: str, **cfg):
    """One run of `cfg`: (name, result, wall seconds, run)."""
    config = TrainConfig.create(**cfg)
    run = RunStore().create(config.to_dict(), name)
    t0 = time.perf_counter()
    result = train(config, run)
    assert result.status == "finished", result.error
    return name, result, time.perf_counter() - t0, run


def row(dataset: str, name: str, backbone: str, result, seconds: float, run) -> str:
    lo, hi = result.test_interval
    plan = read_plan(run.path)
    params = cut_params(backbone, tuple(plan.head.taps), len(result.classes)) / 1e6
    return (
        f"{dataset:16} {name:22} {backbone:24} {params:6.1f}M {result.test_accuracy:7.1%} {lo:6.1%}-{hi:6.1%} "
        f"{result.best_val_acc:7.1%} {seconds:8.0f}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", default="plant-leaves-15")
    ap.add_argument("--teacher", default=None, help="the teacher's backbone (default: auto's choice)")
    ap.add_argument("--teacher-strategy", default="auto")
    ap.add_argument("--student", default="tf_efficientnet_lite0")
    ap.add_argument("--student-strategy", default="top-k")
    ap.add_argument("--student-weights", default="auto")
    ap.add_argument("--epochs", type=int, default=None, help="phase-2 epochs of every run (default: the plan's)")
    ap.add_argument("--student-params", type=int, default=None, help="the student's parameter budget (max_params)")
    args = ap.parse_args()
    epochs = {"finetune_epochs": args.epochs} if args.epochs is not None else {}
    header = f"{'dataset':16} {'run':22} {'backbone':24} {'params':>7} {'test':>7} {'95% interval':13} {'val':>7}"
    print(f"{header} {'s':>8}")
    for dataset in args.datasets.split(","):
        root = SHARED / dataset
        data = dict(data=str(root / "train"), val=str(root / "val"), test=str(root / "test"), **epochs)
        chosen = {"backbone": args.teacher} if args.teacher else {}
        t = trained("teacher", strategy=args.teacher_strategy, **chosen, **data)
        print(row(dataset, t[0], read_plan(t[3].path).backbone, t[1], t[2], t[3]), flush=True)
        student = dict(backbone=args.student, weights=args.student_weights, strategy=args.student_strategy, **data)
        student["max_params"] = args.student_params
        pair = []
        for name, extra in (("student, labels only", {}), ("student, distilled", {"distill_from": t[3].id})):
            s = trained(name, **student, **extra)
            pair.append(s[1])
            print(row(dataset, name, read_plan(s[3].path).backbone, s[1], s[2], s[3]), flush=True)
        p = paired_test(*pair)
        if p is not None:
            print(
                f"{dataset:16} McNemar on the {p.n} test photos: distilled right where labels-only is wrong on "
                f"{p.only_b}, the reverse on {p.only_a}; p = {p.p_value:.2g}"
            )


if __name__ == "__main__":
    main()
