"""Why training and the feature cache run under bf16 autocast and scoring in float32 (engine.model.predict).

1. Speed: Lite0's forward pass over a batch of 32 at 224 px, float32 and under bf16 autocast, on this CPU (median of
   three after a warm-up); bf16 only where the CPU executes it (`engine.model.device.cpu_has_bf16`).
2. Does a head fitted on bf16 features read float32 ones as well? For each shared set, the final pooled features of
   train/ and val/ (one view) in both precisions; a linear head fitted on bf16 train features is scored on val's bf16
   and float32 features, beside a head fitted and scored on float32. Val only: test/ is not read.

Run by hand:  .venv/bin/python bench/precision.py [--datasets plant-leaves-15,eurosat-10]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TRANSFERLAB_HOME", tempfile.mkdtemp(prefix="tl-precision-"))

import numpy as np
import torch

from engine.data.dataset import load_dataset
from engine.model.device import cpu_has_bf16
from engine.model.taps import FINAL
from engine.model.weights import create_backbone
from engine.probe.head_adapt import logits_of
from engine.probe.linear import fit_linear, photo_features

SHARED = ROOT.parent / "shared" / "datasets"
BACKBONE = "tf_efficientnet_lite0"


def forward_ms() -> dict[str, float]:
    """Milliseconds an image of Lite0's forward pass, batch 32, in each precision this CPU runs."""
    model = create_backbone(BACKBONE)[0].eval()
    x = torch.randn(32, 3, 224, 224)
    modes = {"fp32": torch.autocast("cpu", enabled=False)}
    if cpu_has_bf16():
        modes["bf16"] = torch.autocast("cpu", dtype=torch.bfloat16)
    out = {}
    for name, mode in modes.items():
        with torch.no_grad(), mode:
            model(x)
            times = []
            for _ in range(3):
                t0 = time.perf_counter()
                model(x)
                times.append(time.perf_counter() - t0)
        out[name] = statistics.median(times) / 32 * 1000
    return out


def features(paths: list[str], precision: str) -> np.ndarray:
    os.environ["TRANSFERLAB_PRECISION"] = "fp32" if precision == "fp32" else ""
    fs = photo_features(paths, BACKBONE)
    return fs.rows(np.arange(len(paths)), (FINAL,))


def heads(name: str) -> list[str]:
    """One row per C: val accuracy of the bf16 head on bf16 and on float32 val features, and of the float32 head."""
    ds = load_dataset(SHARED / name)
    items = ds.train + ds.val
    y = np.array([it.label for it in items])
    n = len(ds.train)
    x = {p: features([it.path for it in items], p) for p in ("bf16", "fp32")}
    change = np.abs(x["bf16"] - x["fp32"]).mean() / np.abs(x["fp32"]).mean()
    rows = []
    for c in (1.0, 0.1):
        bf16 = fit_linear(x["bf16"][:n], y[:n], x["bf16"][n:], y[n:], len(ds.classes), c)
        fp32 = fit_linear(x["fp32"][:n], y[:n], x["fp32"][n:], y[n:], len(ds.classes), c)
        z = (x["fp32"][n:] - bf16.mean) / bf16.scale
        crossed = (logits_of(bf16, z).argmax(1) == y[n:]).mean()
        rows.append(
            f"{name:16s} {c:4.1f} {len(y) - n:5d} {bf16.accuracy:10.3f} {crossed:10.3f} {fp32.accuracy:10.3f} "
            f"{change:9.1%}"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--datasets", default="plant-leaves-15,eurosat-10")
    args = parser.parse_args()
    ms = forward_ms()
    print(
        f"{BACKBONE} forward, batch 32, {torch.get_num_threads()} threads: "
        + ", ".join(f"{k} {v:.1f} ms an image" for k, v in ms.items())
    )
    print("val accuracy of a linear head on the final features; 'changed': mean |bf16 - fp32| / mean |fp32|")
    columns = ("bf16→bf16", "bf16→fp32", "fp32→fp32")
    print(f"{'dataset':16s} {'C':>4s} {'val':>5s} " + " ".join(f"{c:>10s}" for c in columns) + f" {'changed':>9s}")
    for name in args.datasets.split(","):
        print("\n".join(heads(name)), flush=True)


if __name__ == "__main__":
    main()
