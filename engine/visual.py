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


def filter_grid(weight: torch.Tensor, scale: int = 8, pad: int = 2) -> np.ndarray:
    """RGB uint8 image of the filters, each min-max normalised, enlarged `scale` times, on a grey grid."""
    w = weight[:, :3] if weight.shape[1] >= 3 else weight[:, :1].repeat(1, 3, 1, 1)
    n, _, kh, kw = w.shape
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    cell_h, cell_w = kh * scale + pad, kw * scale + pad
    img = np.full((rows * cell_h + pad, cols * cell_w + pad, 3), 128, np.uint8)
    for i in range(n):
        f = w[i].permute(1, 2, 0).numpy()
        f = (f - f.min()) / max(float(f.max() - f.min()), 1e-8)
        f = np.kron(f, np.ones((scale, scale, 1)))
        r, c = divmod(i, cols)
        img[pad + r * cell_h: pad + r * cell_h + kh * scale, pad + c * cell_w: pad + c * cell_w + kw * scale] = \
            (f * 255).astype(np.uint8)
    return img
