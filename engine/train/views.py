"""The frozen part of the network, run once: pooled features (and activations at the freeze boundary) of K augmented
views of the train images and of the val images, so that training epochs run only the trainable part.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from engine.data.batches import AugmentedImages
from engine.data.decode import load_images
from engine.data.spec import InputSpec
from engine.model.cut import SplitModel
from engine.model.device import autocast, to_device
from engine.model.taps import TapModel, tap_features


@dataclass
class Views:
    """Cached tensors: `train_feats` (K, N, D), `val_feats` (M, D); activations at the boundary when split."""

    train_feats: torch.Tensor
    val_feats: torch.Tensor
    train_acts: torch.Tensor | None
    val_acts: torch.Tensor | None


def frozen_forward(model: TapModel, split: SplitModel | None, x: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The head's input features for `x` (each view as it is, no mirror averaging), and the activations at the
    split's boundary (None without a split)."""
    if split is None:
        return torch.cat(tap_features(model.backbone, x, model.taps), dim=1), None
    a = split.prefix(x)
    return model.forward_head(split.suffix_features(a), pre_logits=True).float(), a.clone()


@torch.inference_mode()
# PLR0913: the parts the cached views are made of, plus progress and cancel
def cache_views(model: TapModel, split: SplitModel | None, spec: InputSpec, images: AugmentedImages,  # noqa: PLR0913
                val_paths: list[str], views: int, seed_of: Callable[[int, int], int], device: torch.device,
                check_cancel: Callable[[], None], batch_size: int = 16,
                progress: Callable[[float], None] | None = None) -> Views:
    """Runs the frozen network (eval mode) over `views` augmented views of `images` and over the val images.

    Args:
        seed_of: (image index, view) → augmentation seed; view k uses the stream -1 - k, apart from the epochs'.
        check_cancel: Called before every batch; raises to stop.
    """
    model.eval()
    images.decode_all()
    feats, acts = [], []
    with autocast(device):
        # the val features go through the model's own `features` (mirror averaging included), as at test time
        for k in range(views):
            fk, ak = [], []
            for b in range(0, len(images), batch_size):
                check_cancel()
                if progress:
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
            check_cancel()
            if progress:
                progress((views * len(images) + b) / (views * len(images) + len(val_paths)))
            x = spec.normalize(to_device(torch.stack(load_images(spec, val_paths[b:b + batch_size])), device))
            f, a = frozen_forward(model, split, x) if split is not None else (model.features(x), None)
            vf.append(f)
            va.append(a)
    return Views(torch.stack(feats), torch.cat(vf), torch.stack(acts) if split else None,
                 torch.cat(va) if split else None)
