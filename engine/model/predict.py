"""The one prediction routine of the engine: image files through the eval transform, in eval mode and in float32.
Validation, the final test score, `evaluate` and Predict all use it, so serving needs nothing from training.

Float32 because every file TransferLab exports (safetensors, ONNX, TFLite, Core ML) runs in it: the accuracy a run
reports and the answers Predict gives are those of the model it ships (bf16 moves borderline answers; the export's
PyTorch row is tested to equal the run's own test figure). Training and the cached features run under autocast (bf16
where the device executes it: 26.4 against 17.5 ms an image for Lite0 on this project's CPU, and heads fitted on bf16
features read float32 ones as well on val: bench/precision.py)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from engine.data.spec import InputSpec
from engine.model.device import image_batches
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


def as_shipped(device: torch.device) -> torch.autocast:
    """The precision the model predicts in: float32, whatever autocast the caller runs under."""
    return torch.autocast(device_type=device.type, enabled=False)


@torch.no_grad()
def predict_logits(
    model: torch.nn.Module, spec: InputSpec, paths: list[str], device: torch.device, progress: Step = QUIET_STEP
) -> torch.Tensor:
    """Logits of image files through the eval transform, in eval mode and float32 (the one prediction routine of the
    engine: validation, the final test score, `evaluate` and `predict` all use it)."""
    out = []
    with evaluating(model), as_shipped(device):
        for done, x in image_batches(spec, paths, device, PREDICT_BATCH):
            progress.check_cancel()
            out.append(model(x).float().cpu())
            progress(done / len(paths))
    return torch.cat(out) if out else torch.zeros(0)
