"""How far to trust an answer, measured: auto on each shared dataset (default budget, a fresh TRANSFERLAB_HOME), its
temperature fitted on val, the expected calibration error on the test split before and after it, and what the
unsure threshold chosen on val does on test (the share of test photos it answers and how many of those are right).

Run by hand:  .venv/bin/python bench/calibration.py [--datasets plant-leaves-15,eurosat-10]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TRANSFERLAB_HOME", tempfile.mkdtemp(prefix="tl-calib-"))

from engine.model.device import pick_device
from engine.plan.config import TrainConfig
from engine.runs.store import RunStore
from engine.service.training import train

SHARED = ROOT.parent / "shared" / "datasets"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", default="plant-leaves-15,eurosat-10")
    args = ap.parse_args()
    rows = []
    for name in args.datasets.split(","):
        cfg = TrainConfig.create(data=str(SHARED / name), strategy="auto")
        m = train(cfg, RunStore().create(cfg.to_dict()))
        assert m.status == "finished", m.error
        rows.append((name, m))
        print(f"done {name}", file=sys.stderr, flush=True)
    print(f"auto on each dataset; ECE: 15 bins; {os.cpu_count()} CPU cores, device {pick_device()}")
    print(
        f"{'data':16} {'T':>5} {'test acc':>8} {'ECE val before/after':>21} {'ECE test before/after':>22} "
        f"{'unsure threshold':>16} {'val answered, right':>20} {'test answered, right':>21}"
    )
    for name, r in rows:
        u, ut = r.unsure, r.unsure_test
        print(
            f"{name:16} {r.temperature:5.2f} {r.test_accuracy:8.3f} {r.ece_val_before:10.3f} / {r.ece_val:.3f} "
            f"{r.ece_test_before:11.3f} / {r.ece_test:.3f} {u['threshold']:16.2f} "
            f"{u['coverage']:12.0%}, {u['accuracy']:.0%} {ut['coverage']:13.0%}, {ut['accuracy']:.0%}"
        )


if __name__ == "__main__":
    main()
