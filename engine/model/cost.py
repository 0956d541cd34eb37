"""What a plan will cost before it runs, from a backbone's profile (`engine.model.profile`): the share of the forward
FLOPs in the groups that train, the forward pace the probe measured while it extracted features, and what a training
step costs against a forward pass, measured here once per architecture (it differs by family far more than FLOPs
say)."""

from __future__ import annotations

import json
import time
from typing import Callable

import torch
from torch import nn

from engine import paths
from engine.model.catalogue import build_model
from engine.model.profile import BackboneProfile

CALIBRATION_BATCH = 8  # images in the batch a forward pass and a training step are timed on
_STEP_COSTS: dict[str, tuple[float, float]] = {}  # what this process has read or measured, by step_costs' key


def _timed(fn, device: torch.device) -> float:
    """Seconds of one call of `fn`, after one call that warms up allocators and kernels."""
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - t0


def _measure(name: str, size: int, device: torch.device, build: Callable[[], nn.Module] | None) -> tuple[float, float]:
    # planning may run under no_grad or inference mode; the model, its input and the step need ordinary autograd
    with torch.inference_mode(False), torch.enable_grad(), torch.random.fork_rng(devices=[]):
        model = build() if build is not None else build_model(name, pretrained=False)
        model = model.to(device, memory_format=torch.channels_last)
        x = torch.randn(CALIBRATION_BATCH, 3, size, size, device=device).contiguous(memory_format=torch.channels_last)

        def forward() -> None:
            with torch.no_grad():
                model(x)

        def step() -> None:
            model.zero_grad(set_to_none=True)
            model(x).float().mean().backward()

        model.eval()
        fwd = _timed(forward, device)
        model.train()
        return fwd / CALIBRATION_BATCH, _timed(step, device) / CALIBRATION_BATCH


def step_costs(
    name: str, size: int, device: str = "cpu", build: Callable[[], nn.Module] | None = None
) -> tuple[float, float]:
    """Seconds per image of an inference forward pass and of a training step (forward with gradients, backward)
    through the whole network, measured on this machine once per architecture, size, device and torch version (a
    random batch; weights do not change speed) and remembered in the cache folder.

    In FLOPs a backward is about twice a forward, so a step would cost 3 forward passes; measured on a 2-core CPU it
    cost 2.4 (EfficientNet-Lite0) to 4.0 (DenseNet-121), and the family decides where in that range. `build` gives
    the randomly initialised instance to time (the profile's own; a new one without it)."""
    key = f"{name}|{size}|{device}|{torch.__version__}|{torch.get_num_threads()}"
    if key not in _STEP_COSTS:
        store = paths.cache_dir() / "step-costs.json"
        known = json.loads(store.read_text()) if store.exists() else {}
        if key not in known:
            known[key] = _measure(name, size, torch.device(device), build)
            paths.atomic_write(store, json.dumps(known, indent=1).encode())
        _STEP_COSTS[key] = (float(known[key][0]), float(known[key][1]))
    return _STEP_COSTS[key]


# PLR0913: each argument is one measured input of the cost model
def epoch_seconds(  # noqa: PLR0913
    profile: BackboneProfile,
    trainable: list[str],
    n_train: int,
    n_val: int,
    images_per_s: float,
    val_views: int = 1,
) -> float:
    """Seconds for one fine-tuning epoch on the full-forward path: every training image's forward at the probe's pace
    (decoding included), plus what a training step costs beyond a forward pass (`profile`'s measured step costs) in
    proportion to the FLOPs of the `trainable` groups; then the validation forward of `val_views` views of each val
    image.

    Args:
        images_per_s: Forward throughput of the whole network, measured by the probe.
    """
    share = profile.flops_share(trainable)
    backward = max(0.0, profile.step_s - profile.forward_s) * share if share else 0.0
    return n_train * (1 / images_per_s + backward) + n_val * val_views / images_per_s


def cached_epoch_seconds(profile: BackboneProfile, trainable: list[str], n_train: int, n_val: int) -> float:
    """Seconds for one fine-tuning epoch on cached activations: a training step through the `trainable` groups alone
    for every training image (their share of the FLOPs of a measured step), then their forward for each val image."""
    return profile.flops_share(trainable) * (n_train * profile.step_s + n_val * profile.forward_s)
