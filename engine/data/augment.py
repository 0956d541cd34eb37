"""Training-time augmentation presets on uint8 tensors decoded once at a working resolution."""

from __future__ import annotations

import math
from typing import Callable

from torchvision.transforms import InterpolationMode, v2

from engine.data.spec import InputSpec

PRESETS = ("none", "light", "basic", "randaugment", "autoaugment")


def working_geometry(spec: InputSpec) -> tuple[str, Callable]:
    """PIL → PIL with the short side at input_size / crop_pct (the eval resize, without the crop)."""
    short = math.floor(spec.input_size[-1] / spec.crop_pct)
    resize = v2.Resize(short, interpolation=InterpolationMode(spec.interpolation), antialias=True)
    return f"work{short}-{spec.interpolation}-c{spec.in_chans}", resize


def train_transform(spec: InputSpec, preset: str = "basic", random_erasing: float = 0.0) -> Callable:
    """uint8 (3, H, W) at working resolution → augmented uint8 (3, S, S).

    Presets: none (the eval crop), light (RandomResizedCrop 0.85–1 and flip: views that stay close to the ones a
    linear probe was fitted on), basic (RandomResizedCrop 0.7–1, flip, ColorJitter 0.2, rotation 15°),
    randaugment (RandAugment(2, 9)), autoaugment (the ImageNet policy). RandomErasing with probability
    `random_erasing` is applied last. Colour operations need 1 or 3 channels: for other counts basic is geometric
    only (no ColorJitter) and the two policies are refused.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown augmentation preset {preset!r}; choose one of {', '.join(PRESETS)}")
    colour = spec.in_chans in (1, 3)
    if preset in ("randaugment", "autoaugment") and not colour:
        raise ValueError(
            f"augment {preset!r} needs 1- or 3-channel images, these have {spec.in_chans}; "
            f"use 'basic' (geometric for these images) or 'none'"
        )
    size = spec.input_size[-1]
    interp = InterpolationMode(spec.interpolation)
    if preset == "none":
        steps: list = [v2.CenterCrop(size)]
    elif preset == "light":
        steps = [
            v2.RandomResizedCrop(size, scale=(0.85, 1.0), ratio=(0.9, 1.1), interpolation=interp, antialias=True),
            v2.RandomHorizontalFlip(),
        ]
    else:
        steps = [
            v2.RandomResizedCrop(size, scale=(0.7, 1.0), interpolation=interp, antialias=True),
            v2.RandomHorizontalFlip(),
        ]
        if preset == "basic":
            steps += [v2.ColorJitter(0.2, 0.2, 0.2)] if colour else []
            # Nearest, torchvision's default: bilinear resampling blurs every training image but no val image, and a
            # head trained on such features lost 4-5 points on plant-leaves-15 (0.73-0.74 against 0.77-0.79).
            steps += [v2.RandomRotation(15, interpolation=InterpolationMode.NEAREST)]
        elif preset == "randaugment":
            steps += [v2.RandAugment(num_ops=2, magnitude=9)]
        else:
            steps += [v2.AutoAugment(v2.AutoAugmentPolicy.IMAGENET)]
    if random_erasing > 0:
        steps += [v2.RandomErasing(p=random_erasing, value=0)]
    return v2.Compose(steps)
