"""The one prediction routine of the engine: image files through the eval transform, in eval mode. Validation, the
final test score, `evaluate` and Predict all use it, so serving needs nothing from training."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from engine.data.spec import InputSpec
from engine.model.device import autocast, image_batches
from engine.progress import QUIET_STEP, Step

PREDICT_BATCH = 32  # images per forward pass when predicting from files


@contextmanager
def evaluating(module: torch.nn.Module) -> Iterator[None]:
    """`module` in eval mode, as scoring runs it (no dropout; BatchNorm on its running statistics, which val photos
    must not move), each submodule's own mode restored after (a frozen group's BatchNorm stays in eval mode)."""
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield
    finally:
        for m, training in modes:
            m.training = training


@torch.no_grad()
def predict_logits(
    model: torch.nn.Module, spec: InputSpec, paths: list[str], device: torch.device, progress: Step = QUIET_STEP
) -> torch.Tensor:
    """Logits of image files through the eval transform, in eval mode (the one prediction routine of the engine:
    validation, the final test score, `evaluate` and `predict` all use it)."""
    out = []
    with evaluating(model), autocast(device):
        for done, x in image_batches(spec, paths, device, PREDICT_BATCH):
            progress.check_cancel()
            out.append(model(x).float().cpu())
            progress(done / len(paths))
    return torch.cat(out) if out else torch.zeros(0)
