"""GPU check (one prepared script, a few minutes): EfficientNet-Lite2 fine-tuning with its bundled weights on the
plant set, autocast bf16, and where the time goes.

Rows, at each batch size:
* `model only`: forward, backward and optimiser step on a batch already on the GPU (the ceiling: GPU-bound).
* `device input, pipeline only` / `DataLoader, pipeline only`: the input path alone, no model (what it can feed).
* `device input` (the default on CUDA): the training photos decoded once into a memory-mapped uint8 array, batches
  copied to the GPU and augmented there (`engine/train/pixels.py`, `engine/data/batch_augment.py`).
* `DataLoader`: JPEG decoding and per-image augmentation in worker processes (TRANSFERLAB_DEVICE_INPUT=0).
The two recipe rows run the same recipe through the same `Trainer` (2 head epochs on cached features, then full
fine-tuning); images/s is the median fine-tuning epoch's, val accuracy the best epoch's.

    python bench/gpu.py [--data DIR] [--epochs N] [--batches 64 256]     (exits 2 without CUDA)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TRANSFERLAB_HOME", tempfile.mkdtemp(prefix="tl-gpu-"))

import numpy as np
import torch

from engine.data import augment as aug
from engine.data.batch_augment import BatchAugment
from engine.data.batches import AugmentedImages, EpochBatches, loader_workers, make_loader
from engine.data.dataset import load_dataset
from engine.model.catalogue import input_spec
from engine.model.device import autocast
from engine.model.weights import create_backbone
from engine.paths import SAMPLE
from engine.plan.config import TrainConfig
from engine.runs.store import RunStore
from engine.service.training import train
from engine.train.pixels import decoded_pixels, device_batches

ARCH = "tf_efficientnet_lite2"
SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets" / "plant-leaves-15"


DEV = torch.device("cuda" if torch.cuda.is_available() else "cpu")


def sync() -> None:
    if DEV.type == "cuda":
        torch.cuda.synchronize()


def model_only(batch: int, steps: int = 30) -> float:
    steps = 2 if DEV.type != "cuda" else steps
    """Images/s of forward + backward + AdamW step on one batch kept on the GPU."""
    dev = DEV
    model = create_backbone(ARCH)[0].to(dev, memory_format=torch.channels_last).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = torch.randn(batch, 3, 260, 260, device=dev).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 15, (batch,), device=dev)
    for i in range(steps + 5):
        if i == 5:
            sync()
            t0 = time.perf_counter()
        with autocast(dev):
            loss = torch.nn.functional.cross_entropy(model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    sync()
    return steps * batch / (time.perf_counter() - t0)


def pipeline_only(kind: str, paths: list[str], batch: int, epochs: int = 3) -> float:
    """Images/s of the input path alone: batches on the GPU, augmented and normalised, no model."""
    dev, spec = DEV, input_spec(ARCH)
    order = [np.random.default_rng(e).permutation(len(paths)) for e in range(epochs)]
    batches = [[o[i : i + batch] for i in range(0, len(o), batch)] for o in order]
    if kind == "device input":
        pixels, augment, gen = decoded_pixels(paths, spec), BatchAugment(spec, "basic"), torch.Generator(device=dev)
        next(device_batches(pixels, batches[0][:1], dev))  # warm
        sync()
        t0 = time.perf_counter()
        for ep in batches:
            for b in device_batches(pixels, ep, dev):
                spec.normalize(augment(b, gen))
    else:
        key, geom = aug.working_geometry(spec)
        images = AugmentedImages(paths, key, geom, aug.train_transform(spec, "basic"))
        sampler = EpochBatches(batch, 0)
        loader = make_loader(images, sampler, dev)
        sync()
        t0 = time.perf_counter()
        for e, ep in enumerate(order):
            sampler.set_epoch(ep, e)
            for b in loader:
                spec.normalize(b.to(dev, non_blocking=True))
    sync()
    return epochs * len(paths) / (time.perf_counter() - t0)


def recipe(data: Path, batch: int, epochs: int, device_input: bool) -> dict:
    os.environ["TRANSFERLAB_DEVICE_INPUT"] = "1" if device_input else "0"
    cfg = TrainConfig.create(
        data=str(data),
        backbone=ARCH,
        strategy="full",
        head_epochs=2,
        finetune_epochs=epochs,
        warmup_epochs=1,
        cache_activations=False,
        batch_size=batch,
        views=1,
        augment="basic",
        device=DEV.type,
        test_fraction=0.0,
    )
    if DEV.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    run = RunStore().create(cfg.to_dict())
    t0 = time.perf_counter()
    m = train(cfg, run)
    ft = [e for e in run.events("epoch") if e.phase == 2][1:]  # the first pays for start-up
    return {
        "img_s": statistics.median(e.images_per_s for e in ft) if ft else 0.0,
        "seconds": time.perf_counter() - t0,
        "val_acc": m.best_val_acc,
        "error": m.error,
        "peak_gib": torch.cuda.max_memory_allocated() / 2**30 if DEV.type == "cuda" else 0.0,
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=SHARED if SHARED.exists() else SAMPLE)
    ap.add_argument("--epochs", type=int, default=8, help="full fine-tuning epochs (after 2 head epochs)")
    ap.add_argument("--batches", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--smoke", action="store_true", help="a tiny run on the CPU: checks the script, measures nothing")
    args = ap.parse_args()
    if args.smoke:
        args.data, args.epochs, args.batches = SAMPLE, 2, [8]
    elif DEV.type != "cuda":
        print("no CUDA device: nothing measured (--smoke checks the script on the CPU)")
        return 2
    torch.backends.cudnn.benchmark = True
    paths = [it.path for it in load_dataset(str(args.data), test_fraction=0.0).train][: 64 if args.smoke else None]
    rows = []
    for batch in args.batches:
        for name, fn in [
            ("model only", lambda: {"img_s": model_only(batch)}),
            ("device input, pipeline only", lambda: {"img_s": pipeline_only("device input", paths, batch)}),
            ("DataLoader, pipeline only", lambda: {"img_s": pipeline_only("DataLoader", paths, batch)}),
            ("device input", lambda: recipe(args.data, batch, args.epochs, True)),
            ("DataLoader", lambda: recipe(args.data, batch, args.epochs, False)),
        ]:
            try:
                rows.append({"batch": batch, "path": name, **fn()})
            except Exception:  # noqa: BLE001 - report what ran
                traceback.print_exc()
                rows.append({"batch": batch, "path": name, "img_s": 0.0, "error": "failed (traceback above)"})
            print(rows[-1], flush=True)
    gpu = torch.cuda.get_device_name() if DEV.type == "cuda" else "CPU (smoke)"
    print(
        f"\n{gpu}; CPU: {os.cpu_count()} cores, DataLoader workers {loader_workers(DEV)}; torch {torch.__version__}; "
        f"data {args.data} ({len(paths)} train)"
    )
    print(
        f"Lite2 at 260 px, bf16 autocast, channels-last; recipe: 2 head epochs + {args.epochs} full fine-tuning "
        f"epochs, basic augmentation"
    )
    print(f"{'batch':>5} {'path':30} {'img/s':>7} {'recipe s':>9} {'val acc':>8} {'peak GiB':>9}")
    for r in rows:
        extra = f"{r['seconds']:9.1f} {r['val_acc']:8.3f} {r['peak_gib']:9.2f}" if "seconds" in r else ""
        print(f"{r['batch']:5d} {r['path']:30} {r['img_s']:7.0f} {extra} {r.get('error') or ''}")
    for batch in args.batches:
        by = {r["path"]: r["img_s"] for r in rows if r["batch"] == batch}
        if not all(
            by.get(k)
            for k in (
                "model only",
                "device input",
                "DataLoader",
                "device input, pipeline only",
                "DataLoader, pipeline only",
            )
        ):
            continue
        # device input: the augmentation runs on the GPU too, so the GPU's ceiling is the model and the augmentation
        # one after the other; DataLoader: the slower of the workers and the model
        gpu = 1 / (1 / by["model only"] + 1 / by["device input, pipeline only"])
        workers = by["DataLoader, pipeline only"]
        verdict = "GPU-bound" if by["device input"] >= 0.85 * gpu else "bound by the host (reading, copying)"
        loader = f"input-bound, the workers decode {workers:.0f} img/s" if workers < by["model only"] else "GPU-bound"
        print(
            f"batch {batch}: device input {by['device input']:.0f} img/s = {by['device input'] / gpu:.0%} of the "
            f"GPU's time for model + augmentation ({gpu:.0f} img/s): {verdict}; DataLoader {by['DataLoader']:.0f} "
            f"img/s: {loader}; device input / DataLoader {by['device input'] / by['DataLoader']:.2f}x"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
