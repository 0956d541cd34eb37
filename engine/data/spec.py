"""The input contract of a backbone: size, resampling, crop, mean/std and channels, from timm's pretrained config.

Recorded with every probe, plan, run and export; `geometry()` is timm's eval transform without ToTensor/Normalize.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import asdict, dataclass, replace
from typing import Callable

import numpy as np
import timm.data
import torch
from PIL import Image
from torchvision.transforms import Normalize, ToTensor
from torchvision.transforms.functional import pil_to_tensor


@dataclass(frozen=True)
class InputSpec:
    """The input contract of a backbone, from timm's pretrained config: recorded with every probe, run and export."""

    input_size: tuple[int, int, int]
    interpolation: str
    crop_pct: float
    crop_mode: str
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def from_config(cls, cfg: dict) -> "InputSpec":
        c = timm.data.resolve_data_config(pretrained_cfg=cfg)
        return cls(
            tuple(c["input_size"]),
            c["interpolation"],
            float(c["crop_pct"]),
            c.get("crop_mode", "center"),
            tuple(c["mean"]),
            tuple(c["std"]),
        )

    @classmethod
    def from_dict(cls, d: dict) -> "InputSpec":
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def in_chans(self) -> int:
        return self.input_size[0]

    def with_chans(self, n: int) -> "InputSpec":
        """The contract for `n` input channels, its statistics matching `adapt_first_conv`'s filters: the RGB mean for
        1 channel, the first two for 2, RGB plus the RGB mean for each extra channel."""
        if n == self.in_chans:
            return self
        if self.in_chans != 3 or n < 1:
            raise ValueError(f"in_chans must be at least 1 (got {n}), adapted from a 3-channel contract")

        def extend(v: tuple[float, ...]) -> tuple[float, ...]:
            return (sum(v) / 3,) if n == 1 else v[:2] if n == 2 else v + (sum(v) / 3,) * (n - 3)

        return replace(self, input_size=(n, *self.input_size[1:]), mean=extend(self.mean), std=extend(self.std))

    def whole_image(self) -> "InputSpec":
        """The same contract without the centre crop: the whole image resized to the input size."""
        return replace(self, crop_pct=1.0)

    def key(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]

    def geometry(self) -> Callable:
        """timm's eval transform without ToTensor/Normalize: PIL (or uint8 tensor) in, resized and cropped out."""
        return _eval_geometry(self)

    def normalize(self, batch_u8: torch.Tensor) -> torch.Tensor:
        """uint8 (B, C, H, W) to normalised float, channels-last."""
        mean = torch.tensor(self.mean, device=batch_u8.device).view(1, -1, 1, 1) * 255
        std = torch.tensor(self.std, device=batch_u8.device).view(1, -1, 1, 1) * 255
        return ((batch_u8.float() - mean) / std).contiguous(memory_format=torch.channels_last)


@functools.cache
def _eval_geometry(spec: InputSpec) -> Callable:
    """Built once per contract: `load` and every batch of feature extraction reuse it."""
    tf = timm.data.create_transform(
        input_size=spec.input_size,
        interpolation=spec.interpolation,
        crop_pct=spec.crop_pct,
        crop_mode=spec.crop_mode,
        is_training=False,
    )
    steps = [
        t for t in tf.transforms if not isinstance(t, (ToTensor, Normalize)) and type(t).__name__ != "MaybeToTensor"
    ]
    return lambda img: _compose(steps, img)


def _compose(steps: list, img):
    for s in steps:
        img = s(img)
    return img


def to_tensor(img: Image.Image | np.ndarray, geometry: Callable) -> torch.Tensor:
    """A decoded image (PIL, or an (H, W, C) uint8 array) through `geometry`, as a uint8 (C, H, W) tensor."""
    if isinstance(img, np.ndarray):
        return geometry(torch.from_numpy(img).permute(2, 0, 1).contiguous())
    return pil_to_tensor(geometry(img))
