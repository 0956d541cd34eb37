"""The classic two-phase recipe as a plain PyTorch loop against TransferLab running the same recipe, same data.

Recipe: 10 head epochs (backbone frozen, augmented images), then 15 epochs with the top 2 layer groups unfrozen,
discriminative rates (head 1e-3, next 1e-4, then 1e-5), 1 warm-up epoch and cosine, AdamW, label smoothing 0.1.
The plain loop runs every epoch through the full network in fp32 (torchvision ImageFolder, DataLoader, NCHW);
TransferLab trains the head on cached features of 4 augmented views and fine-tunes on cached activations below the
first unfrozen group. Also measured: per-step throughput of the unfrozen model (forward + backward on full images).
Run by hand (about 20 minutes on 2 CPU cores):  .venv/bin/python bench/finetune.py [--data DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TRANSFERLAB_HOME", tempfile.mkdtemp(prefix="tl-bench-"))

import torch
from torchvision import datasets, transforms

from engine.plan.stored import read_plan
from engine.model.device import autocast
from engine.model.groups import layer_groups
from engine.model.weights import create_backbone
from engine.plan.config import TrainConfig
from engine.runs.store import RunStore
from engine.service.training import train

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets" / "plant-leaves-15"
BACKBONE, HEAD_EPOCHS, FT_EPOCHS, BS = "tf_efficientnet_lite0", 10, 15, 32


def plain_transforms():
    norm = transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    bicubic = transforms.InterpolationMode.BICUBIC
    train = transforms.Compose(
        [
            transforms.Resize(256, interpolation=bicubic),
            transforms.RandomResizedCrop(224, scale=(0.7, 1.0), interpolation=bicubic),
            transforms.RandomHorizontalFlip(),
            transforms.ColorJitter(0.2, 0.2, 0.2),
            transforms.RandomRotation(15),
            transforms.ToTensor(),
            norm,
        ]
    )
    val = transforms.Compose(
        [transforms.Resize(256, interpolation=bicubic), transforms.CenterCrop(224), transforms.ToTensor(), norm]
    )
    return train, val


def plain_loop(root: Path) -> tuple[float, float, float | None]:
    """(seconds, best val accuracy, test accuracy of the best-val epoch or None without a test/ folder)."""
    t0 = time.perf_counter()
    torch.manual_seed(0)
    model, _ = create_backbone(BACKBONE)
    model.reset_classifier(len(os.listdir(root / "train")))
    groups = layer_groups(model)
    head = len(groups) - 1
    tf_train, tf_val = plain_transforms()
    train = torch.utils.data.DataLoader(
        datasets.ImageFolder(root / "train", tf_train), BS, shuffle=True, num_workers=2, persistent_workers=True
    )
    val = torch.utils.data.DataLoader(datasets.ImageFolder(root / "val", tf_val), 64, num_workers=2)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    params = dict(model.named_parameters())
    best, best_state = 0.0, None
    for phase, epochs, lrs, warm in (
        (1, HEAD_EPOCHS, {head: 1e-3}, 0),
        (2, FT_EPOCHS, {head: 1e-3, head - 1: 1e-4, head - 2: 1e-5}, 1),
    ):
        for p in model.parameters():
            p.requires_grad_(False)
        pgroups = []
        for g in groups:
            if g.index in lrs:
                for n in g.params:
                    params[n].requires_grad_(True)
                pgroups.append({"params": [params[n] for n in g.params], "lr": lrs[g.index], "base": lrs[g.index]})
        opt = torch.optim.AdamW(pgroups, weight_decay=0.01)
        total, step = epochs * len(train), 0
        for _ in range(epochs):
            model.train()
            for x, y in train:
                w = warm * len(train)  # warm-up steps
                cosine = 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * (step - w) / (total - w)))
                f = 0.1 + 0.9 * step / w if step < w else cosine
                for pg in opt.param_groups:
                    pg["lr"] = pg["base"] * f
                loss = loss_fn(model(x), y)
                opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                step += 1
            model.eval()
            correct = n = 0
            with torch.no_grad():
                for x, y in val:
                    correct += int((model(x).argmax(1) == y).sum())
                    n += len(y)
            if correct / n > best:
                best, best_state = correct / n, {k: v.clone() for k, v in model.state_dict().items()}
    seconds = time.perf_counter() - t0
    if not (root / "test").is_dir():
        return seconds, best, None
    model.load_state_dict(best_state)
    model.eval()
    test = torch.utils.data.DataLoader(datasets.ImageFolder(root / "test", tf_val), 64, num_workers=2)
    correct = n = 0
    with torch.no_grad():
        for x, y in test:
            correct += int((model(x).argmax(1) == y).sum())
            n += len(y)
    return seconds, best, correct / n


def transferlab(root: Path) -> tuple[float, float, dict]:
    """The recipe as a TransferLab run: wall seconds, best val accuracy, and what identifies its result (test accuracy,
    the epoch kept, a digest of every test photo's predicted class: equal digests mean the same photos right)."""
    t0 = time.perf_counter()
    cfg = TrainConfig.create(
        data=str(root),
        backbone=BACKBONE,
        strategy="top-k",
        top_k=2,
        head_epochs=HEAD_EPOCHS,
        finetune_epochs=FT_EPOCHS,
        lr=1e-3,
        head_lr=1e-3,
        augment="basic",
        batch_size=BS,
        views=4,
    )
    run = RunStore().create(cfg.to_dict())
    m = train(cfg, run)
    assert m.status == "finished", m.error
    plan = read_plan(run.path)
    pred = ",".join(map(str, m.test_pred or []))
    result = {
        "test": m.test_accuracy,
        "best_epoch": m.best_epoch,
        "head": plan.head.label,
        "test_pred_sha": hashlib.sha256(pred.encode()).hexdigest()[:12],
    }
    return time.perf_counter() - t0, m.best_val_acc, result


def step_throughput(optimised: bool, steps: int = 8) -> float:
    """Images/s of forward + backward + AdamW step with the top 2 groups and head trainable, full images."""
    model, _ = create_backbone(BACKBONE)
    model.reset_classifier(15)
    groups = layer_groups(model)
    train = {n for g in groups[-3:] for n in g.params}
    for n, p in model.named_parameters():
        p.requires_grad_(n in train)
    x, y = torch.randn(BS, 3, 224, 224), torch.randint(0, 15, (BS,))
    if optimised:
        model, x = model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], 1e-4)
    model.train()
    times = []
    for i in range(steps + 2):
        t = time.perf_counter()
        with autocast(torch.device("cpu")) if optimised else torch.autocast("cpu", enabled=False):
            loss = torch.nn.functional.cross_entropy(model(x).float(), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i >= 2:
            times.append(time.perf_counter() - t)
    return BS / statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=SHARED)
    ap.add_argument("--no-plain", action="store_true", help="TransferLab's run only (the plain loop takes ~17 min)")
    args = ap.parse_args()
    plain_s, plain_acc, _ = plain_loop(args.data) if not args.no_plain else (float("nan"), float("nan"), None)
    tl_s, tl_acc, tl_result = transferlab(args.data)
    plain_ips, tl_ips = step_throughput(False), step_throughput(True)
    print(
        f"data {args.data}  backbone {BACKBONE}  recipe {HEAD_EPOCHS} head + {FT_EPOCHS} fine-tune epochs, "
        f"threads {torch.get_num_threads()}"
    )
    print(f"{'path':14} {'wall s':>8} {'best val acc':>13} {'step img/s':>11}")
    if not args.no_plain:
        print(f"{'plain loop':14} {plain_s:8.1f} {plain_acc:13.3f} {plain_ips:11.1f}")
    print(f"{'TransferLab':14} {tl_s:8.1f} {tl_acc:13.3f} {tl_ips:11.1f}")
    print("TransferLab's result: " + ", ".join(f"{k} {v}" for k, v in tl_result.items()))
    print(
        f"wall-time ratio {plain_s / tl_s:.1f}x   accuracy delta {tl_acc - plain_acc:+.3f}   "
        f"step throughput ratio {tl_ips / plain_ips:.2f}x"
    )


if __name__ == "__main__":
    main()
