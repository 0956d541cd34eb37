"""Augmentation of a whole batch at once, where the batch is (on the GPU): every image gets its own random crop,
flip, rotation, colour jitter and erasing, drawn from the same distributions as the per-image presets of
`augment.train_transform`, in a few batched tensor operations instead of one Python call per image.

Crop, flip and rotation are one affine map per image, sampled with a single bicubic `grid_sample` (one resampling,
as the per-image RandomResizedCrop does). Where a rotated window reaches past the crop it takes the picture around it,
and black only beyond the image's edge. The colour jitter applies brightness, contrast and saturation in that order.
"""

from __future__ import annotations

import math
import os

import torch
import torch.nn.functional as F

from engine.data.spec import InputSpec

BATCH_PRESETS = ("none", "light", "basic")  # RandAugment and AutoAugment stay per image (DataLoader workers)
CROP = {"light": ((0.85, 1.0), (0.9, 1.1)), "basic": ((0.7, 1.0), (3 / 4, 4 / 3))}  # (area, aspect ratio) ranges
ROTATION = {"basic": 15.0}  # degrees, either way
JITTER = {"basic": 0.2}  # brightness, contrast and saturation factors in 1 ± this


def device_input(device: torch.device, preset: str) -> bool:
    """Whether training batches take the GPU input path (photos decoded once, batches augmented on the device): on
    CUDA for the batched presets, unless TRANSFERLAB_DEVICE_INPUT=0 (DataLoader workers); =1 takes it on any device."""
    wanted = device_input_setting()
    return preset in BATCH_PRESETS and (wanted == "1" or (wanted == "" and device.type == "cuda"))


def device_input_setting() -> str:
    """TRANSFERLAB_DEVICE_INPUT: "1", "0" or "" (unset); anything else is refused by name."""
    wanted = os.environ.get("TRANSFERLAB_DEVICE_INPUT", "")
    if wanted not in ("", "0", "1"):
        raise ValueError(
            f"TRANSFERLAB_DEVICE_INPUT={wanted!r}: use 1 (batches augmented on the device), 0 (DataLoader "
            f"workers) or leave it unset (the device input on CUDA)"
        )
    return wanted


def working_side(spec: InputSpec) -> int:
    """The square side photos are decoded to for the device input: the eval resize's short side."""
    return math.floor(spec.input_size[-1] / spec.crop_pct)


def pixel_bytes(n_images: int, spec: InputSpec) -> int:
    """Disk taken by `n_images` photos decoded for the device input (uint8, square, at the working side)."""
    return n_images * spec.in_chans * working_side(spec) ** 2


class BatchAugment:
    """uint8 (B, C, W, W) images at the working resolution → augmented float (B, C, S, S) in [0, 255].

    Args:
        spec: The input contract (output size S, channels).
        preset: One of `BATCH_PRESETS`.
        random_erasing: Probability of erasing one rectangle per image (value 0), as `v2.RandomErasing`.
    """

    def __init__(self, spec: InputSpec, preset: str, random_erasing: float = 0.0):
        if preset not in BATCH_PRESETS:
            raise ValueError(f"augment {preset!r} runs per image; batched presets are {', '.join(BATCH_PRESETS)}")
        self.size, self.preset, self.erasing = spec.input_size[-1], preset, random_erasing
        self.colour = spec.in_chans in (1, 3)

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        if self.preset == "none":
            out = _centre_crop(x, self.size).float()
        else:
            out = self._geometry(x.float(), gen)
            if self.preset in JITTER and self.colour:
                out = _jitter(out, JITTER[self.preset], gen)
        return _erase(out, self.erasing, gen) if self.erasing > 0 else out

    def _geometry(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        b, dev = x.shape[0], x.device
        (a_lo, a_hi), (r_lo, r_hi) = CROP[self.preset]
        area = _uniform(b, a_lo, a_hi, gen, dev)
        ratio = torch.exp(_uniform(b, math.log(r_lo), math.log(r_hi), gen, dev))
        w = torch.sqrt(area * ratio).clamp(max=1.0)  # crop sides as fractions of the image side
        h = torch.sqrt(area / ratio).clamp(max=1.0)
        cx = (1 - w) * (2 * _uniform(b, 0, 1, gen, dev) - 1)  # crop centre in normalised coordinates, inside the image
        cy = (1 - h) * (2 * _uniform(b, 0, 1, gen, dev) - 1)
        flip = torch.where(_uniform(b, 0, 1, gen, dev) < 0.5, -1.0, 1.0)
        angle = torch.deg2rad(_uniform(b, -1, 1, gen, dev) * ROTATION.get(self.preset, 0.0))
        cos, sin = torch.cos(angle), torch.sin(angle)
        theta = torch.stack(
            [torch.stack([cos * w * flip, -sin * h, cx], 1), torch.stack([sin * w * flip, cos * h, cy], 1)], 1
        )  # rotate (crop scale, flip)
        grid = F.affine_grid(theta, [b, x.shape[1], self.size, self.size], align_corners=False)
        # bicubic: bilinear sampling at sub-pixel offsets blurs (the fine detail fell to 0.71-0.75 of the eval crop's;
        # bicubic keeps 0.92-1.0, as the per-image presets do)
        return F.grid_sample(x, grid, mode="bicubic", padding_mode="zeros", align_corners=False).clamp(0, 255)


def _uniform(n: int, lo: float, hi: float, gen: torch.Generator, device: torch.device) -> torch.Tensor:
    return torch.rand(n, generator=gen, device=device) * (hi - lo) + lo


def _centre_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    top, left = int(round((x.shape[-2] - size) / 2)), int(round((x.shape[-1] - size) / 2))
    return x[..., top : top + size, left : left + size]


def _jitter(x: torch.Tensor, amount: float, gen: torch.Generator) -> torch.Tensor:
    """Brightness, contrast and saturation, each a factor in 1 ± `amount` per image (hue untouched)."""
    b, dev = x.shape[0], x.device
    factor = [_uniform(b, 1 - amount, 1 + amount, gen, dev).view(b, 1, 1, 1) for _ in range(3)]
    x = (x * factor[0]).clamp(0, 255)
    gray = _gray(x)
    x = ((x - gray.mean((2, 3), keepdim=True)) * factor[1] + gray.mean((2, 3), keepdim=True)).clamp(0, 255)
    if x.shape[1] == 3:
        gray = _gray(x)
        x = ((x - gray) * factor[2] + gray).clamp(0, 255)
    return x


def _gray(x: torch.Tensor) -> torch.Tensor:
    if x.shape[1] == 1:
        return x
    return 0.2989 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]


def _erase(x: torch.Tensor, p: float, gen: torch.Generator) -> torch.Tensor:
    """One rectangle per image set to 0 with probability `p`: area 2-33% of the image, aspect ratio 0.3-3.3."""
    b, _, hgt, wid = x.shape
    dev = x.device
    area = _uniform(b, 0.02, 0.33, gen, dev) * hgt * wid
    ratio = torch.exp(_uniform(b, math.log(0.3), math.log(3.3), gen, dev))
    eh = torch.sqrt(area * ratio).clamp(max=hgt)
    ew = torch.sqrt(area / ratio).clamp(max=wid)
    top = _uniform(b, 0, 1, gen, dev) * (hgt - eh)
    left = _uniform(b, 0, 1, gen, dev) * (wid - ew)
    on = _uniform(b, 0, 1, gen, dev) < p
    rows = torch.arange(hgt, device=dev).view(1, hgt, 1)
    cols = torch.arange(wid, device=dev).view(1, 1, wid)
    inside = (
        (rows >= top.view(b, 1, 1))
        & (rows < (top + eh).view(b, 1, 1))
        & (cols >= left.view(b, 1, 1))
        & (cols < (left + ew).view(b, 1, 1))
        & on.view(b, 1, 1)
    )
    return x.masked_fill(inside.unsqueeze(1), 0.0)
