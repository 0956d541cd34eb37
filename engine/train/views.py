"""The frozen part of the network, run once: pooled features (and activations at the freeze boundary) of K augmented
views of the train images and of the val images, so that training epochs run only the trainable part.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch

from engine.paths import atomic_write

from engine.data.batches import AugmentedImages
from engine.data.decode import load_images
from engine.data.spec import InputSpec
from engine.model.cut import SplitModel
from engine.model.device import autocast, to_device
from engine.model.taps import TapModel, tap_features
from engine.progress import QUIET_STEP, Step


@dataclass
class Views:
    """Cached tensors: `train_feats` (K, N, D), `val_feats` (M, D); activations at the boundary when split, and the
    target photos' there when phase 2 adapts to them."""

    train_feats: torch.Tensor
    val_feats: torch.Tensor
    train_acts: torch.Tensor | None
    val_acts: torch.Tensor | None
    target_acts: torch.Tensor | None = None


def views_key(produced_by: dict) -> str:
    """A short key of what produced a set of cached views (data, weights, input contract, cut, views, seed)."""
    return hashlib.sha256(json.dumps(produced_by, sort_keys=True, default=str).encode()).hexdigest()[:16]


def save_views(path: Path, views: Views) -> None:
    """Writes `views` to `path` (atomically), so a resumed attempt of the run need not compute them again."""
    tensors = {k: v.contiguous() for k, v in asdict(views).items() if v is not None}
    atomic_write(path, lambda f: torch.save(tensors, f))


def load_views(path: Path) -> Views | None:
    """The views stored at `path` (memory-mapped), or None when there are none or the file is not a complete set."""
    if not path.exists():
        return None
    try:
        t = torch.load(path, weights_only=True, mmap=True)
        return Views(t["train_feats"], t["val_feats"], t.get("train_acts"), t.get("val_acts"), t.get("target_acts"))
    except (OSError, RuntimeError, KeyError, EOFError):
        return None


def frozen_forward(
    model: TapModel, split: SplitModel | None, x: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The head's input features for `x` (each view as it is, no mirror averaging), and the activations at the
    split's boundary (None without a split)."""
    if split is None:
        return torch.cat(tap_features(model.backbone, x, model.taps), dim=1), None
    a = split.prefix(x)
    return model.forward_head(split.suffix_features(a), pre_logits=True).float(), a.clone()


@torch.inference_mode()
# PLR0913: the parts the cached views are made of, and who watches
def cache_views(  # noqa: PLR0913
    model: TapModel,
    split: SplitModel | None,
    spec: InputSpec,
    images: AugmentedImages,
    val_paths: list[str],
    views: int,
    seed_of: Callable[[int, int], int],
    device: torch.device,
    progress: Step = QUIET_STEP,
    batch_size: int = 16,
) -> Views:
    """Runs the frozen network (eval mode) over `views` augmented views of `images` and over the val images.

    Args:
        seed_of: (image index, view) → augmentation seed; view k uses the stream -1 - k, apart from the epochs'.
        progress: Told the fraction done and asked for a cancel before every batch.
    """
    model.eval()
    images.decode_all()
    feats, acts = [], []
    with autocast(device):
        # the val features go through the model's own `features` (mirror averaging included), as at test time
        for k in range(views):
            fk, ak = [], []
            for b in range(0, len(images), batch_size):
                progress.check_cancel()
                progress((k * len(images) + b) / (views * len(images) + len(val_paths)))
                idx = range(b, min(b + batch_size, len(images)))
                x = torch.stack([images[(i, seed_of(i, -1 - k))] for i in idx])
                f, a = frozen_forward(model, split, spec.normalize(to_device(x, device)))
                fk.append(f)
                ak.append(a)
            feats.append(torch.cat(fk))
            acts.append(torch.cat(ak) if split else None)
        vf, va = [], []
        for b in range(0, len(val_paths), batch_size):
            progress.check_cancel()
            progress((views * len(images) + b) / (views * len(images) + len(val_paths)))
            x = spec.normalize(to_device(torch.stack(load_images(spec, val_paths[b : b + batch_size])), device))
            f, a = frozen_forward(model, split, x) if split is not None else (model.features(x), None)
            vf.append(f)
            va.append(a)
    return Views(
        torch.stack(feats), torch.cat(vf), torch.stack(acts) if split else None, torch.cat(va) if split else None
    )


@torch.inference_mode()
def cache_target_acts(
    split: SplitModel, spec: InputSpec, paths: list[str], device: torch.device, progress: Step = QUIET_STEP
) -> torch.Tensor:
    """The target photos' activations at the split's boundary (eval transform, one view each)."""
    out = []
    with autocast(device):
        for b in range(0, len(paths), 16):
            progress.check_cancel()
            progress(b / max(1, len(paths)))
            x = spec.normalize(to_device(torch.stack(load_images(spec, paths[b : b + 16])), device))
            out.append(split.prefix(x).clone())
    return torch.cat(out)
