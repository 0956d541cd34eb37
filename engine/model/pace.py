"""What an inference forward pass and a training step cost on this machine: measured once per architecture, input
size, device and torch version on a randomly initialised instance (weights do not change speed), and remembered in
the cache folder. A backbone's profile (`engine.model.profile`) reads them; the cost model scales them by FLOPs.
"""

from __future__ import annotations

import json
import time
from typing import Callable

import torch
from torch import nn

from engine import paths
from engine.model.catalogue import build_model

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
