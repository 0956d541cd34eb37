"""The one prediction routine of the engine: image files through the eval transform, in eval mode. Validation, the
final test score, `evaluate` and Predict all use it, so serving needs nothing from training."""

from __future__ import annotations

import torch

from engine.data.spec import InputSpec
from engine.model.device import autocast, image_batches
from engine.progress import QUIET_STEP, Step

PREDICT_BATCH = 32  # images per forward pass when predicting from files


@torch.no_grad()
def predict_logits(
    model: torch.nn.Module, spec: InputSpec, paths: list[str], device: torch.device, progress: Step = QUIET_STEP
) -> torch.Tensor:
    """Logits of image files through the eval transform, in eval mode (the one prediction routine of the engine:
    validation, the final test score, `evaluate` and `predict` all use it)."""
    was_training = model.training
    model.eval()
    out = []
    try:
        with autocast(device):
            for done, x in image_batches(spec, paths, device, PREDICT_BATCH):
                progress.check_cancel()
                out.append(model(x).float().cpu())
                progress(done / len(paths))
    finally:
        model.train(was_training)
    return torch.cat(out) if out else torch.zeros(0)
