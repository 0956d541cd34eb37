"""Photos from somewhere else, measured: trained on labelled photographs, used on art paintings (the shared PACS pair).

Every row trains on `source/train`, chooses on `source/val`, may read `target/unlabelled` (the paintings, without
labels) and is scored once on `target/test` (labelled paintings nothing chose on). EfficientNet-Lite0, seed 0, one
TRANSFERLAB_HOME for all rows (the feature cache is shared; seconds are each row's own run).

Rows: the source-only probe and auto (also with a 900 s budget); the simple fixes (the head standardised on the
target photos, and with BatchNorm statistics re-estimated on them; that head adapted by CORAL, T3A, SHOT-IM or the
EM class mix, engine.probe.head_adapt; stronger augmentation, ten times smaller rates and a longer warm-up for a
top-group fine-tune); DANN and MMD on that fine-tune; and auto given the unlabelled paintings, which chooses by
itself (also with 900 s).

Run by hand:  .venv/bin/python bench/domain.py [--rows probe,auto,...] [--pair DIR]
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
os.environ.setdefault("TRANSFERLAB_HOME", tempfile.mkdtemp(prefix="tl-domain-"))

from engine.model.device import pick_device
from engine.plan.config import TrainConfig
from engine.plan.stored import read_plan
from engine.runs.result import RunResult
from engine.runs.store import RunStore
from engine.service.training import train

PAIR = ROOT.parent / "shared" / "datasets" / "pacs-photo-art"
HEAD_NAME = {"coral": "CORAL", "t3a": "T3A", "shot": "SHOT-IM", "em": "EM class mix"}
FINETUNE = dict(strategy="top-k", top_k=1, head_epochs=0, finetune_epochs=8, target_norm=False, target_pseudo=False)
ROWS = {
    "probe": ("source-only linear probe", dict(strategy="feature-extraction", head_epochs=0, target_norm=False)),
    "auto": ("source-only auto", dict(strategy="auto")),
    "norm": (
        "simple fix: the probe's head standardised on the target photos",
        dict(strategy="feature-extraction", head_epochs=0, target_norm=True, target_pseudo=False, target_bn=False),
    ),
    "pseudo": (
        "... and refitted with the target photos it labels surely",
        dict(strategy="feature-extraction", head_epochs=0, target_norm=True, target_pseudo=True, target_bn=False),
    ),
    "bn": (
        "simple fix: ... with BatchNorm re-estimated on the target photos",
        dict(strategy="feature-extraction", head_epochs=0, target_norm=True, target_pseudo=False, target_bn=True),
    ),
    **{
        f"head-{m}": (
            f"head-level: the standardised probe's head adapted by {HEAD_NAME[m]}",
            dict(strategy="feature-extraction", head_epochs=0, target_norm=True, target_pseudo=False)
            | dict(target_bn=False, target_head=m),
        )
        for m in HEAD_NAME
    },
    "finetune": ("top-group fine-tune, source only", FINETUNE),
    "strong": ("simple fix: stronger augmentation (RandAugment)", {**FINETUNE, "augment": "randaugment"}),
    "slow": ("simple fix: rates ten times smaller", {**FINETUNE, "lr": 1e-4}),
    "warmup": ("simple fix: a longer warm-up (3 epochs)", {**FINETUNE, "warmup_epochs": 3}),
    "dann": ("DANN on the top-group fine-tune", {**FINETUNE, "adapt": "dann"}),
    "mmd": ("MMD on the top-group fine-tune", {**FINETUNE, "adapt": "mmd"}),
    "auto-target": ("auto with the unlabelled target photos", dict(strategy="auto")),
    "auto-target-900": (
        "... with a 900 s budget (time to fine-tune and try adaptation)",
        dict(strategy="auto", budget=900),
    ),
    "auto-900": ("source-only auto with a 900 s budget", dict(strategy="auto", budget=900)),
}
USES_TARGET = {"norm", "pseudo", "bn", "dann", "mmd", "auto-target", "auto-target-900"}
USES_TARGET |= {f"head-{m}" for m in HEAD_NAME}


def row(key: str, pair: Path) -> dict:
    label, kw = ROWS[key]
    target = {"target": str(pair / "target" / "unlabelled")} if key in USES_TARGET else {}
    cfg = TrainConfig.create(
        data=str(pair / "source"),
        target_test=str(pair / "target" / "test"),
        test_fraction=0,
        seed=0,
        **target,
        **kw,
    )
    run = RunStore().create(cfg.to_dict(), f"domain-{key}")
    t0 = time.perf_counter()
    m = train(cfg, run)
    assert m.status == "finished", (key, m.error)
    r, plan = m, read_plan(run.path)
    return {
        "key": key,
        "label": label,
        "val": r.best_val_acc,
        "val_interval": r.val_interval,
        "target": r.target_test_accuracy,
        "target_interval": r.target_test_interval,
        "n_target": r.target_test_n,
        "seconds": time.perf_counter() - t0,
        "chose": f"{plan.backbone} {plan.head.label}; norm {'on' if plan.target.norm else 'off'}; pseudo "
        f"{plan.target.pseudo}; bn {'on' if plan.target.bn else 'off'}; fix {plan.target.fix or 'none'}; "
        f"head {plan.target.head or 'none'}; adapt {plan.target.adapt}; "
        f"epoch {r.best_epoch} of {plan.phases.total_epochs}" + _checked(r),
    }


def _checked(r: RunResult) -> str:
    """The end-of-run check's scores, when it ran (engine.train.reverse_check)."""
    c = r.target_reverse
    if not c:
        return ""
    return f"; end check: epoch {c['epoch']} {c['chosen']:.3f} vs start {c['start']:.3f}, kept {c['kept']}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", default=",".join(ROWS))
    ap.add_argument("--pair", default=str(PAIR), help="a folder with source/{train,val} and target/{unlabelled,test}")
    args = ap.parse_args()
    rows = []
    for key in args.rows.split(","):
        rows.append(row(key, Path(args.pair)))
        print(f"done {rows[-1]}", file=sys.stderr, flush=True)
    print(
        f"{Path(args.pair).name}: train on source/train, choose on source/val, score target/test once; "
        f"{os.cpu_count()} CPU cores, device {pick_device()}"
    )
    print(f"{'row':66} {'source val':>19} {'target test':>19} {'s':>5}  chose")
    for r in rows:
        v, t = r["val_interval"] or (0, 0), r["target_interval"] or (0, 0)
        print(
            f"{r['label']:66} {r['val']:.3f} ({v[0]:.2f}-{v[1]:.2f}) {r['target']:.3f} ({t[0]:.2f}-{t[1]:.2f}) "
            f"{r['seconds']:5.0f}  {r['chose']}"
        )


if __name__ == "__main__":
    main()
