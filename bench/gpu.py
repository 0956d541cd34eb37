"""GPU check (one prepared script, under 5 minutes): fine-tune EfficientNet-Lite2 with its bundled weights on the
plant set with AMP; report images/s, peak GPU memory, and the same recipe on this machine's CPU for comparison.

Run where a GPU is present:  python bench/gpu.py [--data DIR]   (prints a table; exits 2 without CUDA)
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TRANSFERLAB_HOME", tempfile.mkdtemp(prefix="tl-gpu-"))

import torch  # noqa: E402

from engine.config import TrainConfig  # noqa: E402
from engine.loop import Trainer  # noqa: E402
from engine.paths import SAMPLE  # noqa: E402
from engine.store import RunStore  # noqa: E402

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets" / "plant-leaves-15"


def run(data: Path, device: str, epochs: int) -> dict:
    cfg = TrainConfig(data=str(data), backbone="tf_efficientnet_lite2", strategy="full", head_epochs=1,
                      finetune_epochs=epochs, cache_activations=False, batch_size=64, views=1, device=device)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    run_ = RunStore().create(cfg.to_dict())
    t0 = time.perf_counter()
    m = Trainer(cfg, run_).fit()
    ft = [e for e in run_.events("epoch") if e["phase"] == 2]
    return {"device": device, "seconds": time.perf_counter() - t0, "val_acc": m["best_val_acc"],
            "img_s": sum(e["images_per_s"] for e in ft) / max(1, len(ft)), "epoch_s": ft[-1]["seconds"] if ft else 0,
            "peak_gib": torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else 0.0, "error": m["error"]}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=SHARED if SHARED.exists() else SAMPLE)
    ap.add_argument("--epochs", type=int, default=5)
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device: nothing measured")
        return 2
    gpu = run(args.data, "cuda", args.epochs)
    cpu = run(args.data, "cpu", 1)  # one fine-tuning epoch on the CPU, extrapolated to the recipe below
    cpu_recipe = cpu["epoch_s"] * args.epochs
    print(f"{torch.cuda.get_device_name()}  torch {torch.__version__}  data {args.data}  recipe: Lite2, full "
          f"fine-tune, {args.epochs} epochs, batch 64, AMP (bf16) on CUDA")
    print(f"{'device':8} {'img/s':>8} {'epoch s':>8} {'recipe s':>9} {'val acc':>8} {'peak GiB':>9}")
    print(f"{'cuda':8} {gpu['img_s']:8.0f} {gpu['epoch_s']:8.1f} {gpu['seconds']:9.1f} {gpu['val_acc']:8.3f} "
          f"{gpu['peak_gib']:9.2f}")
    print(f"{'cpu':8} {cpu['img_s']:8.0f} {cpu['epoch_s']:8.1f} {cpu_recipe:9.1f} {'-':>8} {'-':>9}")
    print(f"GPU speed-up per epoch: {cpu['epoch_s'] / max(gpu['epoch_s'], 1e-9):.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
