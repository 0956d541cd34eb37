"""What a plan will cost before it runs: forward FLOPs per layer group (counted on the meta device, no weights, no
compute), turned into seconds with the throughput measured while the probe extracted features."""
from __future__ import annotations

import functools

import torch
from torch.utils.flop_counter import FlopCounterMode

from engine.model.catalogue import build_model
from engine.model.groups import layer_groups


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


def epoch_seconds(name: str, size: int, trainable: list[str], n_train: int, n_val: int, images_per_s: float,
                  val_views: int = 1) -> float:
    """Seconds for one fine-tuning epoch on the full-forward path: the forward of every image, the backward (about
    twice the forward) of the `trainable` groups, then the validation forward of `val_views` views of each val image.

    Args:
        images_per_s: Forward throughput of the whole network, measured by the probe.
    """
    flops = group_flops(name, size)
    share = sum(flops.get(g, 0.0) for g in trainable) / max(sum(flops.values()), 1.0)
    return n_train / images_per_s * (1 + 2 * share) + n_val * val_views / images_per_s
