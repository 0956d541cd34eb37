"""Pictures of what a network learned: the first layer's filters as an image grid."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn


def first_conv_weight(model: nn.Module) -> torch.Tensor:
    """The first convolution's weight (O, C, kH, kW), located through the model's pretrained config."""
    name = (getattr(model, "pretrained_cfg", None) or {}).get("first_conv")
    mod = dict(model.named_modules()).get(f"{name}" if name else "", None)
    if mod is None or not hasattr(mod, "weight"):  # e.g. 'patch_embed.proj' is given as a module path
        mod = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    return mod.weight.detach().float().cpu()


def filter_grid(weight: torch.Tensor, cell: int = 56, pad: int = 4) -> np.ndarray:
    """RGB uint8 image of the filters on a white grid, each enlarged to about `cell` pixels with nearest resampling.

    Each filter is scaled symmetrically around zero (grey = 0, light = positive, dark = negative), so an edge
    detector shows a light and a dark side and a colour blob shows its colour; min-max scaling would hide the sign.
    """
    w = weight[:, :3] if weight.shape[1] >= 3 else weight[:, :1].repeat(1, 3, 1, 1)
    n, _, kh, kw = w.shape
    scale = max(1, cell // max(kh, kw))
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    cell_h, cell_w = kh * scale + pad, kw * scale + pad
    img = np.full((rows * cell_h + pad, cols * cell_w + pad, 3), 255, np.uint8)
    for i in range(n):
        f = w[i].permute(1, 2, 0).numpy()
        f = 0.5 + 0.5 * f / max(float(np.abs(f).max()), 1e-8)
        f = np.kron(f, np.ones((scale, scale, 1)))
        r, c = divmod(i, cols)
        img[pad + r * cell_h : pad + r * cell_h + kh * scale, pad + c * cell_w : pad + c * cell_w + kw * scale] = (
            f * 255
        ).astype(np.uint8)
    return img
