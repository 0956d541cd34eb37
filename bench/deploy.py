"""Deployment: auto's model on each shared dataset, exported and every file run on the test photos and timed here.

For each dataset: `train --strategy auto` (train on train/, choose on val/) in a fresh TRANSFERLAB_HOME, then one
export with TorchScript, ONNX fp32, ONNX int8 and TFLite for the server target (every file is measured, a refused one
too; the int8 recipe is chosen on val within its 1-point drop), then each target's default budget applied to those
measures (which files meet it, and why not).

Columns: test accuracy of that file run on test/ with its 95% Wilson interval; top-1 agreement with PyTorch; size on
disk; latency at batch 1 on this CPU (median and 95th percentile of 30 photos after 5 warm-up), one thread and all.
With `--student BACKBONE`, a student of auto's model (`train --backbone BACKBONE --strategy top-k --distill-from` auto's
run, same photos and splits) is exported and measured the same way, below it. Core ML is left out: TransferLab writes it
but cannot run it here (only Apple's systems can); bench/distill.py compares a student with the same student on
labels alone. TFLite needs `make edge`.
`--student-params N` gives the student a parameter budget (its backbone cut to fit: a microcontroller's is 500000) and
`--student-strategy` its strategy (top-k by default; auto chooses the cut's stages and depth under the budget).
Run by hand:  .venv/bin/python bench/deploy.py [--datasets plant-leaves-15,eurosat-10] [--budget S] [--student B]
              [--student-params N] [--student-strategy auto|top-k|...]
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

from engine.model.device import pick_device
from engine.plan.config import TrainConfig
from engine.plan.stored import read_plan
from engine.runs.store import RunStore
from engine.serve.export import export_run
from engine.serve.targets import TARGETS
from engine.service.training import train

SHARED = ROOT.parent / "shared" / "datasets"
FORMATS = ("torchscript", "onnx", "onnx-int8", "tflite")


def auto_run(root: Path, budget: float | None):
    """`train --strategy auto` from nothing cached; the run and its wall seconds."""
    os.environ["TRANSFERLAB_HOME"] = tempfile.mkdtemp(prefix="tl-deploy-")
    return trained(TrainConfig.create(data=str(root), strategy="auto", budget=budget))


def student_run(root: Path, backbone: str, teacher, max_params: int | None, strategy: str):
    """A student on `backbone` (cut to `max_params`) distilled from `teacher`'s answers; the run and its wall
    seconds."""
    cfg = TrainConfig.create(
        data=str(root), backbone=backbone, strategy=strategy, distill_from=teacher.id, max_params=max_params
    )
    return trained(cfg)


def trained(cfg: TrainConfig):
    """The finished run of `cfg` and its wall seconds."""
    t0 = time.perf_counter()
    run = RunStore().create(cfg.to_dict())
    result = train(cfg, run)
    assert result.status == "finished", result.error
    return run, time.perf_counter() - t0


def table(name: str, export) -> list[str]:
    lines = []
    for m in export.measures:
        lines.append(
            f"{name:16} {m.name:12} {m.accuracy:7.1%} {m.interval[0]:6.1%}-{m.interval[1]:6.1%} {m.agreement:7.1%} "
            f"{m.size_mb:6.1f} {m.one_thread.p50:7.1f} {m.one_thread.p95:7.1f} {m.all_threads.p50:7.1f} "
            f"{m.all_threads.p95:7.1f}"
        )
    lines += [f"{name:16} {why}" for why in export.refused.values()]
    return lines


def ratios(export) -> str:
    """int8 against fp32: points lost on test, times smaller, times faster on one thread and on all."""
    by = {m.name: m for m in export.measures}
    fp32, int8 = by.get("ONNX fp32"), by.get("ONNX int8")
    if not fp32 or not int8:
        return "int8: not measured"
    return (
        f"int8 vs fp32: {100 * (fp32.accuracy - int8.accuracy):+.1f} points lost on {int8.n} test photos, "
        f"{fp32.size_mb / int8.size_mb:.1f}x smaller, {fp32.one_thread.p50 / int8.one_thread.p50:.1f}x faster on "
        f"one thread, {fp32.all_threads.p50 / int8.all_threads.p50:.1f}x on all; agreement {int8.agreement:.1%}"
    )


def budgets(export) -> list[str]:
    """Each target's default budget applied to the measured files."""
    lines = []
    reference = export.measures[0]
    for target in TARGETS.values():
        meet = [
            m.name
            for m in export.measures[1:]
            if m.name in {"ONNX fp32", "ONNX int8", "TFLite fp32"} and not target.broken(m, reference, export.params)
        ]
        lines.append(f"  {target.name:15} ({target.limits()}): {', '.join(meet) or 'none'}")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", default="plant-leaves-15,eurosat-10")
    ap.add_argument("--budget", type=float, default=None)
    ap.add_argument("--student", default=None, help="a backbone to distil auto's model into, measured below it")
    ap.add_argument("--student-params", type=int, default=None, help="the student's parameter budget (max_params)")
    ap.add_argument("--student-strategy", default="top-k")
    args = ap.parse_args()
    print(f"deployment on the test split; machine: {os.cpu_count()} CPU cores, training device {pick_device()}")
    header = (
        f"{'data':16} {'file':12} {'test':>7} {'95% interval':>13} {'agrees':>7} {'MB':>6} {'1t p50':>7} "
        f"{'1t p95':>7} {'all p50':>7} {'all p95':>7}"
    )
    notes = []
    rows = []
    for name in args.datasets.split(","):
        run, seconds = auto_run(SHARED / name, args.budget)
        runs = [("auto", run, seconds)]
        if args.student:
            student = student_run(SHARED / name, args.student, run, args.student_params, args.student_strategy)
            runs.append(("student", *student))
        for who, r, s in runs:
            t0 = time.perf_counter()
            target = TARGETS["server"]  # every file is measured, refused or not; the budgets are applied below
            export = export_run(r, Path(tempfile.mkdtemp(prefix="tl-export-")), FORMATS, target)
            rows += table(f"{name[:8]} {who}", export)
            plan = read_plan(r.path)
            notes += [
                f"{name} {who}: {plan.backbone} ({export.params / 1e6:.2f}M parameters) trained in {s:.0f} s; "
                f"export and measurement {time.perf_counter() - t0:.0f} s",
                f"  {ratios(export)}",
                f"  {export.int8.get('sentence', 'int8: no recipe chosen on val')}",
                *budgets(export),
            ]
        print(f"{name}: done", flush=True)
    print(header)
    print("\n".join(rows))
    print("\n".join(notes))


if __name__ == "__main__":
    main()
