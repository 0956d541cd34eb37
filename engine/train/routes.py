"""The three ways a phase runs, behind one interface: `train_batches(order, epoch)`, `logits(x)` and `val_logits(rows)`.

* `FeaturePath`: the head alone, on cached features of K augmented views (phase 1: no backbone pass per epoch).
* `ActivationPath`: the groups above a frozen boundary, on cached activations at that boundary.
* `FullPath`: the whole forward pass on augmented images, MixUp/CutMix when asked. On CUDA the photos are decoded
  once and batches are augmented on the GPU (`pixels.py`); otherwise, and for the per-image presets, a DataLoader
  decodes and augments each image (worker processes on CUDA, the training thread on the CPU).

Each path trains one `module` (the head, the groups above the boundary, or the whole model). Under torchrun,
`parallel()` wraps it in `DistributedDataParallel`, once per phase: the trainable parameters change between phases.
`make_path(ctx, state, phase)` chooses the path a phase runs on.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from timm.data import Mixup
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from engine.data import augment as aug
from engine.data.batch_augment import BatchAugment, device_input
from engine.data.batches import AugmentedImages, EpochBatches, make_loader
from engine.data.spec import InputSpec
from engine.model.cut import SplitModel
from engine.model.device import autocast, to_device
from engine.model.taps import TapModel
from engine.plan.cost import cached_views
from engine.train.pixels import decoded_pixels, device_batches
from engine.train.state import TrainContext, TrainState
from engine.model.predict import evaluating, predict_logits
from engine.progress import QUIET_STEP, Step
from engine.train.views import Views, cache_target_acts, cache_views, load_views, save_views, views_key

Batch = tuple[np.ndarray, torch.Tensor, torch.Tensor | None]  # (indices, input, soft targets or None)


def _index_batches(order: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """The epoch's order cut into batches; a last batch of one image is dropped (BatchNorm needs two)."""
    return [b for b in (order[i : i + batch_size] for i in range(0, len(order), batch_size)) if len(b) >= 2]


class _Trainable:
    """The module a path trains, and the callable its forward goes through (the module, or its DDP wrapper).

    A path that can adapt (`adapts`) also gives the head's input for a batch (`head_input`) and a batch of target
    photos beside it (`target_batch`): the adaptation loss compares the two.
    """

    module: nn.Module
    device: torch.device
    adapts = False

    def head_input(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def target_batch(self, n: int, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """`n` target photos drawn with the step's seed: their rows among the target photos, and the input."""
        raise NotImplementedError

    def parallel(self, world: int) -> None:
        """Wraps the trainable module in DistributedDataParallel when more than one process trains (gradients are
        averaged in buckets, overlapping the backward pass)."""
        self.forward = self.module
        if world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.forward = DistributedDataParallel(self.module, device_ids=ids)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return getattr(self, "forward", self.module)(x)

    def close(self) -> None:
        """Ends what the path holds open beyond the phase (the full forward's DataLoader workers)."""


class _Suffix(nn.Module):
    """The groups above a cut, as a module (for DDP)."""

    def __init__(self, split: SplitModel):
        super().__init__()
        self.model, self.split = split.model, split

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        return self.split.suffix(a)


class FeaturePath(_Trainable):
    """Trains the head on cached features; epoch e reads view e mod K."""

    name, exact_val = "cached features", False  # validation reads cached features, not the images

    def __init__(self, model: TapModel, views: Views, batch_size: int, device: torch.device):
        self.model, self.views, self.batch_size, self.device = model, views, batch_size, device
        self.module, self.train_x, self.val_x = model.get_classifier(), views.train_feats, views.val_feats

    def train_batches(self, order: np.ndarray, epoch: int) -> Iterator[Batch]:
        for idx in _index_batches(order, self.batch_size):
            yield idx, self.batch(idx, epoch), None

    def batch(self, idx: np.ndarray, epoch: int) -> torch.Tensor:
        """The input of images `idx` in `epoch` (also for the LR finder)."""
        return to_device(self.train_x[epoch % len(self.train_x)][idx], self.device)

    @torch.no_grad()
    def val_logits(self, rows: np.ndarray | None = None, progress: Step = QUIET_STEP) -> torch.Tensor:
        x = self.val_x if rows is None else self.val_x[rows]
        with evaluating(self.module), autocast(self.device):  # the head itself runs in float32
            logits = torch.cat([self.module(to_device(b, self.device)).float().cpu() for b in x.split(64)])
        progress(1.0)
        return logits


class ActivationPath(FeaturePath):
    """Trains the groups above the split's boundary on cached activations; epoch e reads view e mod K."""

    # PLR0913: the parts this input path is made of
    def __init__(  # noqa: PLR0913
        self,
        model: TapModel,
        split: SplitModel,
        views: Views,
        batch_size: int,
        device: torch.device,
        boundary: str,
    ):
        super().__init__(model, views, batch_size, device)
        self.split, self.name = split, f"cached activations below {boundary}"
        self.module, self.train_x, self.val_x = _Suffix(split), views.train_acts, views.val_acts
        self.target_x = views.target_acts
        self.adapts = self.target_x is not None

    def head_input(self, a: torch.Tensor) -> torch.Tensor:
        return self.model.forward_head(self.split.suffix_features(a), pre_logits=True)

    def target_batch(self, n: int, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """`n` target photos' cached activations, drawn with the step's seed."""
        rows = torch.randint(len(self.target_x), (n,), generator=torch.Generator().manual_seed(step))
        return rows, to_device(self.target_x[rows], self.device)


class FullPath(_Trainable):
    """The whole forward pass on augmented images; validation on the val images through the eval transform."""

    name, exact_val = "full forward", True  # validation runs the images through the eval transform, as scoring does

    # PLR0913: the parts this input path is made of
    def __init__(  # noqa: PLR0913
        self,
        model: TapModel,
        images: AugmentedImages,
        batches: EpochBatches,
        spec: InputSpec,
        val_paths: list[str],
        device: torch.device,
        labels: torch.Tensor,
        mix: Mixup | None = None,
        pixels: np.ndarray | None = None,
        augment: BatchAugment | None = None,
    ):
        self.model, self.images, self.batches, self.spec = model, images, batches, spec
        self.val_paths, self.device, self.labels, self.mix = val_paths, device, labels, mix
        self.pixels, self.augment = pixels, augment  # the device input path, when given
        self._loader, self.module = None, model
        self.targets: AugmentedImages | None = None  # target photos, augmented as the training photos are

    def with_targets(self, targets: AugmentedImages) -> None:
        self.targets, self.adapts = targets, True

    def head_input(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.features(x)

    def target_batch(self, n: int, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """`n` target photos decoded and augmented in this thread, drawn with the step's seed."""
        rows = torch.randint(len(self.targets), (n,), generator=torch.Generator().manual_seed(step))
        pixels = torch.stack([self.targets[(i, self.batches.seed_of(i, -step - 1))] for i in rows.tolist()])
        return rows, self.spec.normalize(to_device(pixels, self.device))

    def train_batches(self, order: np.ndarray, epoch: int) -> Iterator[Batch]:
        inputs = self._device_inputs if self.pixels is not None else self._loader_inputs
        for idx, x in inputs(order, epoch):
            soft = None
            if self.mix is not None and len(idx) % 2 == 0:
                x, soft = self.mix(x, self.labels[idx].to(self.device))
            yield idx, x, soft

    def _loader_inputs(self, order: np.ndarray, epoch: int) -> Iterator[tuple[np.ndarray, torch.Tensor]]:
        """Batches decoded and augmented per image by the DataLoader (worker processes on CUDA)."""
        if self._loader is None:
            self._loader = make_loader(self.images, self.batches, self.device)
        for idx, pixels in zip(self.batches.set_epoch(order, epoch), self._loader):
            yield np.asarray(idx), self.spec.normalize(to_device(pixels, self.device))

    def _device_inputs(self, order: np.ndarray, epoch: int) -> Iterator[tuple[np.ndarray, torch.Tensor]]:
        """Batches read from the decoded photos and augmented on the device, with the epoch's seed."""
        index_batches = _index_batches(order, self.batches.batch_size)
        gen = torch.Generator(device=self.device)
        gen.manual_seed(self.batches.seed_of(0, epoch))
        for idx, pixels in zip(index_batches, device_batches(self.pixels, index_batches, self.device)):
            yield idx, self.spec.normalize(self.augment(pixels, gen))

    def batch(self, idx: np.ndarray, epoch: int) -> torch.Tensor:
        """One augmented batch built in this thread (for the LR finder)."""
        pixels = torch.stack([self.images[(int(i), self.batches.seed_of(int(i), epoch))] for i in idx])
        return self.spec.normalize(to_device(pixels, self.device))

    @torch.no_grad()
    def val_logits(self, rows: np.ndarray | None = None, progress: Step = QUIET_STEP) -> torch.Tensor:
        paths = self.val_paths if rows is None else [self.val_paths[i] for i in rows]
        return predict_logits(self.model, self.spec, paths, self.device, progress=progress)

    def close(self) -> None:
        self._loader = None  # ends the DataLoader's worker processes


def make_path(ctx: TrainContext, state: TrainState, phase: int) -> FeaturePath | ActivationPath | FullPath:
    """The path `phase` runs on: cached features for the head, cached activations when the model is cut at a frozen
    boundary, else the full forward. Cached views are computed on first use."""
    cfg = ctx.cfg
    if phase == 1 or ctx.split is not None:
        if state.views is None:
            state.views = run_views(ctx, state)
        if phase == 1:
            return FeaturePath(ctx.model, state.views, cfg.optim.batch_size, ctx.device)
        boundary = ctx.groups[next(i for i, f in enumerate(ctx.plan.phases.frozen) if not f)].name
        return ActivationPath(ctx.model, ctx.split, state.views, cfg.optim.batch_size, ctx.device, boundary)
    reg = cfg.regularisation
    mix = (
        Mixup(
            mixup_alpha=reg.mixup,
            cutmix_alpha=reg.cutmix,
            num_classes=len(ctx.classes),
            label_smoothing=reg.label_smoothing,
        )
        if reg.mixup or reg.cutmix
        else None
    )
    val_paths = [it.path for it in ctx.ds.val]
    images, batches = train_images(ctx, state)
    pixels, augment = None, None
    if device_input(ctx.device, ctx.plan.phases.augment):  # decoded once, augmented in batches on the device
        decoding = ctx.report.step("decode the training photos once")
        decoding(0.0)
        pixels = decoded_pixels(images.paths, ctx.spec, progress=decoding)
        decoding(1.0)
        augment = BatchAugment(ctx.spec, ctx.plan.phases.augment, cfg.regularisation.random_erasing)
    path = FullPath(ctx.model, images, batches, ctx.spec, val_paths, ctx.device, ctx.ytr, mix, pixels, augment)
    if ctx.reads_targets:
        path.with_targets(
            AugmentedImages(
                ctx.targets.photos.paths, images.work_key, images.work_geometry, images.transform, images.chans
            )
        )
    return path


def run_views(ctx: TrainContext, state: TrainState) -> Views:
    """The frozen part's output for this run: read back from the run folder when an earlier attempt of the same run
    completed it (a resume; the frozen part has not changed since), else computed now and kept there until the run
    finishes."""
    step = "cache features of augmented views"
    plan, cut = ctx.plan, None if ctx.split is None else ctx.split.index
    key = views_key(
        {
            "data": plan.data.fingerprint,
            "backbone": plan.backbone,
            "weights": ctx.weights.sha256,
            "spec": plan.input.to_dict(),
            "taps": plan.head.taps,
            "flip": plan.head.flip,
            "cut": cut,
            "views": cached_views(ctx.cfg, plan),
            "augment": plan.phases.augment,
            "seed": ctx.cfg.runtime.seed,
            "erasing": ctx.cfg.regularisation.random_erasing,
            "target": plan.target.fingerprint if ctx.reads_targets else "",
        }
    )
    store = ctx.run.path / f"views-{key}.pt" if ctx.run is not None and ctx.world == 1 else None
    if store is not None and (views := load_views(store)) is not None:
        ctx.report(f"{step}: reused, complete from the stopped attempt", 1.0)
        return views
    caching = ctx.report.step(step)
    caching(0.0)
    images, batches = train_images(ctx, state)
    views = cache_views(
        ctx.model,
        ctx.split,
        ctx.spec,
        images,
        [it.path for it in ctx.ds.val],
        cached_views(ctx.cfg, plan),
        batches.seed_of,
        ctx.device,
        progress=caching,
    )
    caching(1.0)
    if ctx.reads_targets and ctx.split is not None:
        targets = ctx.report.step("cache the target photos")
        targets(0.0)
        views.target_acts = cache_target_acts(ctx.split, ctx.spec, ctx.targets.photos.paths, ctx.device, targets)
        targets(1.0)
    if store is not None:
        save_views(store, views)
    return views


def train_images(ctx: TrainContext, state: TrainState) -> tuple[AugmentedImages, EpochBatches]:
    """The run's augmented train images and its epoch batcher (made once per run, kept on `state`)."""
    if state.images is None:
        work_key, work_geom = aug.working_geometry(ctx.spec)
        tf = aug.train_transform(ctx.spec, ctx.plan.phases.augment, ctx.cfg.regularisation.random_erasing)
        state.images = (
            AugmentedImages([it.path for it in ctx.ds.train], work_key, work_geom, tf, ctx.spec.in_chans),
            EpochBatches(ctx.cfg.optim.batch_size, ctx.cfg.runtime.seed),
        )
    return state.images
