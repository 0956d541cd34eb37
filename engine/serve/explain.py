"""Where the model looks: Grad-CAM overlays (the `grad-cam` package, MIT licence) for CNNs and vision transformers.

The layer is the backbone's deepest stage that is still in the model, as timm's `feature_info` names it (a pruned
backbone ends earlier); for a transformer, that block's first norm, its tokens reshaped to their patch grid, its class
and register tokens dropped, as the package documents for ViTs. The run's starting head (the probe's, epoch 0) can be
explained beside the chosen model, so "the fine-tune looks at the lesion, the probe at the background" can be seen.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.utils.image import show_cam_on_image
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn

from engine.data.imageio import load_image
from engine.data.spec import InputSpec, to_tensor
from engine.errors import DataError
from engine.model.taps import TapModel
from engine.runs.store import Run
from engine.plan.trained import load_run_model


def cam_layer(model: TapModel) -> tuple[nn.Module, object]:
    """(the layer Grad-CAM reads, the reshape of its output to (B, C, H, W), or None for a CNN)."""
    modules = dict(model.backbone.named_modules())
    names = [f["module"] for f in getattr(model.backbone, "feature_info", []) if f["module"] in modules]
    if not names:
        raise DataError(f"{model.arch}: no stage to explain (the model lists no features)")
    layer = modules[names[-1]]
    prefix = getattr(model.backbone, "num_prefix_tokens", None)
    grid = getattr(getattr(model.backbone, "patch_embed", None), "grid_size", None)
    if prefix is None or grid is None:
        return layer, None
    # a transformer pooled by its class token: after the last block's attention the patch tokens no longer reach it,
    # so the map is read at that attention's input (the package's recipe for ViTs: blocks[-1].norm1)
    layer = getattr(layer, "norm1", layer)

    rows, cols = grid

    def tokens_to_grid(t: torch.Tensor) -> torch.Tensor:
        if t.ndim != 3:
            return t
        return t[:, prefix:, :].reshape(t.shape[0], rows, cols, t.shape[2]).permute(0, 3, 1, 2)

    return layer, tokens_to_grid


@dataclass
class Explanation:
    """One photo explained: the overlay (H, W, 3 uint8), the heat map (H, W, 0-1) and the class it explains."""

    overlay: np.ndarray
    heat: np.ndarray
    class_index: int


def explain(model: TapModel, spec: InputSpec, image, class_index: int | None = None) -> Explanation:
    """Grad-CAM of `model` for one image (a path, bytes or an opened image), for `class_index` (default: the class it
    predicts)."""
    img = _opened(image, spec)
    pixels = to_tensor(img, spec.geometry())
    x = spec.normalize(pixels[None])
    model = model.eval()
    if class_index is None:
        with torch.no_grad():
            class_index = int(model(x).argmax(1))
    layer, reshape = cam_layer(model)
    with GradCAM(model=model, target_layers=[layer], reshape_transform=reshape) as cam:
        heat = cam(input_tensor=x, targets=[ClassifierOutputTarget(class_index)])[0]
    shown = pixels[:3] if pixels.shape[0] >= 3 else pixels[:1].expand(3, -1, -1)  # grey (+ alpha): drawn in grey
    rgb = shown.permute(1, 2, 0).float().numpy() / 255.0
    return Explanation(show_cam_on_image(rgb, heat, use_rgb=True), heat, class_index)


def _opened(image, spec: InputSpec):
    return load_image(image, spec.in_chans) if isinstance(image, (str, Path, bytes)) else image


def explain_run(run: Run, images: list) -> list[tuple[Explanation, Explanation | None]]:
    """Grad-CAM of the run's chosen model and of its starting head (the probe's; None when the run kept no separate
    starting checkpoint) for each photo, both for the class the chosen model predicts. The model is loaded (and its
    file checked) once for all of them."""
    model, spec, _ = load_run_model(run)
    opened = [_opened(image, spec) for image in images]
    chosen = [explain(model, spec, img) for img in opened]
    start = run.load_checkpoint("start")
    if start is None:
        return [(c, None) for c in chosen]
    model.load_state_dict(start["model"])
    return [(c, explain(model, spec, img, c.class_index)) for c, img in zip(chosen, opened)]
