"""Features of augmented photos: what the head's input looks like when the training photos are augmented harder
than the plan would (one seeded view each), for the simple-fix trial "stronger augmentation" (`engine.plan.trials`).

The probe's cache holds each photo as it is (and mirrored); a stronger augmentation changes the pixels, so its
features need one pass of the backbone over the training photos. Not cached: the trial runs once, when a plan is
made, and the plan is stored.
"""

from __future__ import annotations

import numpy as np
import torch

from engine.data.augment import train_transform, working_geometry
from engine.data.batches import AugmentedImages
from engine.model.catalogue import input_spec
from engine.model.device import autocast, pick_device, to_device
from engine.model.taps import tap_features
from engine.model.weights import create_backbone
from engine.progress import QUIET_STEP, Step

BATCH = 32


@torch.inference_mode()
# PLR0913: the photos, the backbone and how it is read, the augmentation and its seed, who watches
def augmented_features(  # noqa: PLR0913
    paths: list[str],
    backbone: str,
    taps: tuple[int, ...],
    preset: str,
    weights: str = "auto",
    in_chans: int = 3,
    seed: int = 0,
    progress: Step = QUIET_STEP,
) -> np.ndarray:
    """The head's input (the pooled features at `taps`, concatenated as the head reads them) for one view of each
    photo augmented with `preset` (`engine.data.augment.PRESETS`), photo `i` with seed `seed * 1_000_003 + i`;
    shape (len(paths), D). `progress` is told the fraction done and asked for a cancel before every batch.

    Raises:
        ValueError: A preset these photos cannot take (the colour policies on other than 1 or 3 channels).
    """
    spec = input_spec(backbone, in_chans)
    work_key, work_geometry = working_geometry(spec)
    images = AugmentedImages(paths, work_key, work_geometry, train_transform(spec, preset), spec.in_chans)
    device = pick_device()
    model = create_backbone(backbone, weights, in_chans)[0].eval().to(device)
    out = []
    with autocast(device):
        for b in range(0, len(paths), BATCH):
            progress.check_cancel()
            progress(b / max(1, len(paths)))
            x = torch.stack([images[(i, seed * 1_000_003 + i)] for i in range(b, min(b + BATCH, len(paths)))])
            feats = tap_features(model, spec.normalize(to_device(x, device)), taps)
            out.append(torch.cat([f.float() for f in feats], dim=1).cpu().numpy())
    progress(1.0)
    return np.concatenate(out) if out else np.empty((0, 0), np.float32)
