"""What a plan will cost before it runs: forward FLOPs per layer group (counted on the meta device, no weights, no
compute), turned into seconds with the throughput measured while the probe extracted features, and what a training
step costs against a forward pass, measured here once per architecture (it differs by family far more than FLOPs
say)."""

from __future__ import annotations

import functools
import json
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from engine import paths
from engine.model.catalogue import build_model
from engine.model.groups import layer_groups
from engine.model.taps import FINAL, TapModel


@functools.cache
def group_flops(name: str, size: int) -> dict[str, float]:
    """Forward FLOPs of one image of `size` px through each layer group of architecture `name`, by group name."""
    with torch.device("meta"):
        model = build_model(name, pretrained=False)
        with FlopCounterMode(display=False) as counter:
            model(torch.empty(1, 3, size, size))
    counts = {k.partition(".")[2]: sum(v.values()) for k, v in counter.get_flop_counts().items() if "." in k}
    return {g.name: float(sum(counts.get(m, 0) for m in g.modules)) for g in layer_groups(model)}


def total_flops(name: str, size: int) -> float:
    return sum(group_flops(name, size).values())


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


def _measure(name: str, size: int, device: torch.device) -> tuple[float, float]:
    # planning may run under no_grad or inference mode; the model, its input and the step need ordinary autograd
    with torch.inference_mode(False), torch.enable_grad(), torch.random.fork_rng(devices=[]):
        model = build_model(name, pretrained=False).to(device, memory_format=torch.channels_last)
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


def step_costs(name: str, size: int, device: str = "cpu") -> tuple[float, float]:
    """Seconds per image of an inference forward pass and of a training step (forward with gradients, backward)
    through the whole network, measured on this machine once per architecture, size, device and torch version (a
    random batch; weights do not change speed) and remembered in the cache folder.

    In FLOPs a backward is about twice a forward, so a step would cost 3 forward passes; measured on a 2-core CPU it
    cost 2.4 (EfficientNet-Lite0) to 4.0 (DenseNet-121), and the family decides where in that range."""
    key = f"{name}|{size}|{device}|{torch.__version__}|{torch.get_num_threads()}"
    if key not in _STEP_COSTS:
        store = paths.cache_dir() / "step-costs.json"
        known = json.loads(store.read_text()) if store.exists() else {}
        if key not in known:
            known[key] = _measure(name, size, torch.device(device))
            paths.atomic_write(store, json.dumps(known, indent=1).encode())
        _STEP_COSTS[key] = (float(known[key][0]), float(known[key][1]))
    return _STEP_COSTS[key]


# PLR0913: each argument is one measured input of the cost model
def epoch_seconds(  # noqa: PLR0913
    name: str,
    size: int,
    trainable: list[str],
    n_train: int,
    n_val: int,
    images_per_s: float,
    val_views: int = 1,
    device: str = "cpu",
) -> float:
    """Seconds for one fine-tuning epoch on the full-forward path: every training image's forward at the probe's pace
    (decoding included), plus what a training step costs beyond a forward pass (measured, `step_costs`) in proportion
    to the FLOPs of the `trainable` groups; then the validation forward of `val_views` views of each val image.

    Args:
        images_per_s: Forward throughput of the whole network, measured by the probe.
    """
    flops = group_flops(name, size)
    share = sum(flops.get(g, 0.0) for g in trainable) / max(sum(flops.values()), 1.0)
    backward = 0.0
    if share:
        fwd, step = step_costs(name, size, device)
        backward = max(0.0, step - fwd) * share
    return n_train * (1 / images_per_s + backward) + n_val * val_views / images_per_s


class _Reached(Exception):
    """Stops a meta-device forward pass once the cut's input is known."""


@functools.cache
def boundary_bytes(name: str, size: int, group: str) -> int | None:
    """Bytes of one image's float32 activation at the input of layer group `group` of the model a plan trains (the
    backbone `name` with its head, as `TapModel` groups it): what a cut there caches per image, from a forward pass on
    the meta device: no weights, no compute. None when the forward pass never reaches the group as a module call
    (then no cut is made there: `SplitModel` needs a chain)."""
    with torch.device("meta"):
        model = TapModel(build_model(name, pretrained=False), (FINAL,), 2)
        first = next(g for g in layer_groups(model) if g.name == group).modules[0]
        seen: list[int] = []

        def record(_, args) -> None:
            seen.append(args[0].numel())
            raise _Reached  # nothing after the cut is needed

        # a shape read on the meta device; the cut itself (`SplitModel`) uses timm's forward_intermediates
        hook = model.get_submodule(first).register_forward_pre_hook(record)
        try:
            model(torch.empty(1, 3, size, size))
        except _Reached:
            pass
        except RuntimeError:  # past the backbone (the head's autocast has no meta device): the group was not reached
            pass
        finally:
            hook.remove()
    return seen[0] * 4 if seen else None


# PLR0913: each argument is one measured input of the cost model
def cached_epoch_seconds(  # noqa: PLR0913
    name: str,
    size: int,
    trainable: list[str],
    n_train: int,
    n_val: int,
    device: str = "cpu",
) -> float:
    """Seconds for one fine-tuning epoch on cached activations: a training step through the `trainable` groups alone
    for every training image (their share of the FLOPs of a measured step), then their forward for each val image."""
    flops = group_flops(name, size)
    share = sum(flops.get(g, 0.0) for g in trainable) / max(sum(flops.values()), 1.0)
    fwd, step = step_costs(name, size, device)
    return share * (n_train * step + n_val * fwd)


def forward_pace(name: str, size: int, device: str = "cpu") -> float:
    """Images per second of an inference forward pass through `name`, as measured by `step_costs` (no decoding): the
    pace of a plan that has no probe to measure one (from scratch)."""
    return 1.0 / max(step_costs(name, size, device)[0], 1e-9)
