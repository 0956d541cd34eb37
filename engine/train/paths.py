"""The three ways a phase runs, behind one interface: `train_batches(order, epoch)` and `val_logits()`.

* `FeaturePath`: the head alone, on cached features of K augmented views (phase 1: no backbone pass per epoch).
* `ActivationPath`: the groups above a frozen boundary, on cached activations at that boundary.
* `FullPath`: the whole forward pass on augmented images (DataLoader workers on CUDA), MixUp/CutMix when asked.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Callable

import numpy as np
import torch
from timm.data import Mixup

from engine.data.batches import AugmentedImages, EpochBatches, make_loader
from engine.model.device import autocast, to_device
from engine.model.spec import InputSpec
from engine.model.cut import SplitModel
from engine.model.taps import TapModel
from engine.train.views import Views

Batch = tuple[np.ndarray, torch.Tensor, torch.Tensor | None]  # (indices, input, soft targets or None)


def _index_batches(order: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """The epoch's order cut into batches; a last batch of one image is dropped (BatchNorm needs two)."""
    return [b for b in (order[i:i + batch_size] for i in range(0, len(order), batch_size)) if len(b) >= 2]


class FeaturePath:
    """Trains the head on cached features; epoch e reads view e mod K."""

    name = "cached features"

    def __init__(self, model: TapModel, views: Views, batch_size: int, device: torch.device):
        self.model, self.views, self.batch_size, self.device = model, views, batch_size, device

    def train_batches(self, order: np.ndarray, epoch: int) -> Iterator[Batch]:
        feats = self.views.train_feats[epoch % len(self.views.train_feats)]
        for idx in _index_batches(order, self.batch_size):
            yield idx, to_device(feats[idx], self.device), None

    def batch(self, idx: np.ndarray, epoch: int) -> torch.Tensor:
        """The input of images `idx` in `epoch` (for the LR finder)."""
        return to_device(self.views.train_feats[epoch % len(self.views.train_feats)][idx], self.device)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.get_classifier()(x)

    @torch.no_grad()
    def val_logits(self) -> torch.Tensor:
        return torch.cat([self.logits(to_device(f, self.device)).float().cpu() for f in self.views.val_feats.split(64)])


class ActivationPath(FeaturePath):
    """Trains the groups above the split's boundary on cached activations; epoch e reads view e mod K."""

    def __init__(self, model: TapModel, split: SplitModel, views: Views, batch_size: int, device: torch.device,
                 boundary: str):
        super().__init__(model, views, batch_size, device)
        self.split, self.name = split, f"cached activations below {boundary}"

    def train_batches(self, order: np.ndarray, epoch: int) -> Iterator[Batch]:
        acts = self.views.train_acts[epoch % len(self.views.train_acts)]
        for idx in _index_batches(order, self.batch_size):
            yield idx, to_device(acts[idx], self.device), None

    def batch(self, idx: np.ndarray, epoch: int) -> torch.Tensor:
        return to_device(self.views.train_acts[epoch % len(self.views.train_acts)][idx], self.device)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.split.suffix(x)

    @torch.no_grad()
    def val_logits(self) -> torch.Tensor:
        with autocast(self.device):
            return torch.cat([self.logits(to_device(a, self.device)).float().cpu()
                              for a in self.views.val_acts.split(64)])


class FullPath:
    """The whole forward pass on augmented images; validation on the val images through the eval transform."""

    name = "full forward"

    def __init__(self, model: TapModel, images: AugmentedImages, batches: EpochBatches, spec: InputSpec,
                 val_paths: list[str], device: torch.device, labels: torch.Tensor, mix: Mixup | None = None):
        self.model, self.images, self.batches, self.spec = model, images, batches, spec
        self.val_paths, self.device, self.labels, self.mix = val_paths, device, labels, mix
        self._loader = None

    def train_batches(self, order: np.ndarray, epoch: int) -> Iterator[Batch]:
        if self._loader is None:
            self._loader = make_loader(self.images, self.batches, self.device)
        index_batches = self.batches.set_epoch(order, epoch)
        for idx, pixels in zip(index_batches, self._loader):
            idx = np.asarray(idx)
            x = self.spec.normalize(to_device(pixels, self.device))
            soft = None
            if self.mix is not None and len(idx) % 2 == 0:
                x, soft = self.mix(x, self.labels[idx].to(self.device))
            yield idx, x, soft

    def batch(self, idx: np.ndarray, epoch: int) -> torch.Tensor:
        """One augmented batch built in this thread (for the LR finder)."""
        pixels = torch.stack([self.images[(int(i), self.batches.seed_of(int(i), epoch))] for i in idx])
        return self.spec.normalize(to_device(pixels, self.device))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    @torch.no_grad()
    def val_logits(self) -> torch.Tensor:
        return predict_logits(self.model, self.spec, self.val_paths, self.device)

    def close(self) -> None:
        self._loader = None  # ends the DataLoader's worker processes


@torch.no_grad()
def predict_logits(model: torch.nn.Module, spec: InputSpec, paths: list[str], device: torch.device,
                   batch_size: int = 32, progress: Callable[[float], None] | None = None,
                   check_cancel: Callable[[], None] | None = None) -> torch.Tensor:
    """Logits of image files through the eval transform, in eval mode (the one prediction routine of the engine:
    validation, the final test score, `evaluate` and `predict` all use it)."""
    was_training = model.training
    model.eval()
    out = []
    try:
        with autocast(device):
            for b in range(0, len(paths), batch_size):
                if check_cancel:
                    check_cancel()
                x = spec.normalize(to_device(torch.stack(spec.load(paths[b:b + batch_size])), device))
                out.append(model(x).float().cpu())
                if progress:
                    progress(min(1.0, (b + batch_size) / len(paths)))
    finally:
        model.train(was_training)
    return torch.cat(out) if out else torch.zeros(0)
