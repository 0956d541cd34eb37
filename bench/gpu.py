"""GPU check (one prepared script, under 5 minutes): fine-tune EfficientNet-Lite2 with its bundled weights on the
plant set with AMP; report images/s, peak GPU memory, and the same recipe on the CPU for comparison.

Rows: CUDA with DataLoader worker processes and pinned memory (the default), CUDA with decoding in the training
thread (TRANSFERLAB_WORKERS=0, to show what the workers buy), and the CPU (one fine-tuning epoch, extrapolated to the
recipe's epochs). Run where a GPU is present:

    python bench/gpu.py [--data DIR] [--epochs N]      (exits 2 without CUDA unless --cpu-only)
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TRANSFERLAB_HOME", tempfile.mkdtemp(prefix="tl-gpu-"))

import torch  # noqa: E402

from engine.data.batches import loader_workers  # noqa: E402
from engine.paths import SAMPLE  # noqa: E402
from engine.plan.config import TrainConfig  # noqa: E402
from engine.runs.store import RunStore  # noqa: E402
from engine.train.loop import Trainer  # noqa: E402

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets" / "plant-leaves-15"


def run(data: Path, device: str, epochs: int, workers: int | None = None) -> dict:
    """One run of the recipe; `workers` overrides the DataLoader's worker count."""
    if workers is not None:
        os.environ["TRANSFERLAB_WORKERS"] = str(workers)
    else:
        os.environ.pop("TRANSFERLAB_WORKERS", None)
    cfg = TrainConfig.create(data=str(data), backbone="tf_efficientnet_lite2", strategy="full", head_epochs=2,
                             finetune_epochs=epochs, warmup_epochs=1, cache_activations=False, batch_size=64, views=1,
                             augment="basic", device=device)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    run_ = RunStore().create(cfg.to_dict())
    t0 = time.perf_counter()
    m = Trainer(cfg, run_).fit()
    ft = [e for e in run_.events("epoch") if e["phase"] == 2]
    steady = ft[1:] or ft  # the first epoch pays for worker start-up and kernel selection
    return {"device": device, "workers": loader_workers(torch.device(device)), "seconds": time.perf_counter() - t0,
            "val_acc": m["best_val_acc"], "error": m["error"],
            "img_s": sorted(e["images_per_s"] for e in steady)[len(steady) // 2] if steady else 0.0,
            "epoch_s": sorted(e["seconds"] for e in steady)[len(steady) // 2] if steady else 0.0,
            "peak_gib": torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else 0.0}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=SHARED if SHARED.exists() else SAMPLE)
    ap.add_argument("--epochs", type=int, default=8, help="full fine-tuning epochs (after 2 head epochs)")
    ap.add_argument("--cpu-only", action="store_true", help="only the CPU row (checks the script without a GPU)")
    args = ap.parse_args()
    if not torch.cuda.is_available() and not args.cpu_only:
        print("no CUDA device: nothing measured")
        return 2
    plan = [] if args.cpu_only else [("cuda", args.epochs, None), ("cuda", 3, 0)]
    plan.append(("cpu", 1, None))
    rows = []
    for device, epochs, workers in plan:
        try:
            rows.append({**run(args.data, device, epochs, workers), "epochs": epochs})
        except Exception:  # noqa: BLE001 - report what ran
            traceback.print_exc()
        print(rows[-1] if rows else "", flush=True)
    gpu_name = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    print(f"\n{gpu_name}; CPU: {os.cpu_count()} cores; torch {torch.__version__}; data {args.data}")
    print(f"recipe: Lite2 (bundled weights), 2 head epochs + {args.epochs} full fine-tuning epochs, batch 64, basic "
          f"augmentation, autocast (bf16 on CUDA)")
    print(f"{'device':6} {'workers':>7} {'epochs':>6} {'img/s':>8} {'epoch s':>8} {'recipe s':>9} {'val acc':>8} "
          f"{'peak GiB':>9}")
    for r in rows:
        recipe = r["seconds"] if r["epochs"] == args.epochs else float("nan")
        if r["device"] == "cpu":  # one epoch measured; the recipe's fine-tuning time extrapolated
            recipe = r["epoch_s"] * args.epochs
        print(f"{r['device']:6} {r['workers']:7d} {r['epochs']:6d} {r['img_s']:8.0f} {r['epoch_s']:8.2f} "
              f"{recipe:9.1f} {r['val_acc']:8.3f} {r['peak_gib']:9.2f}  {r['error']}")
    by = {(r["device"], r["workers"] > 0): r for r in rows}
    if ("cuda", True) in by and ("cpu", False) in by:
        print(f"GPU speed-up per fine-tuning epoch: {by['cpu', False]['epoch_s'] / by['cuda', True]['epoch_s']:.1f}x")
    if ("cuda", True) in by and ("cuda", False) in by:
        print(f"DataLoader workers vs in-thread decoding on CUDA: "
              f"{by['cuda', True]['img_s'] / max(by['cuda', False]['img_s'], 1e-9):.2f}x img/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
