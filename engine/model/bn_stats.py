"""BatchNorm statistics re-estimated on photos from somewhere else (AdaBN; Li et al. 2016, "Revisiting Batch
Normalization For Practical Domain Adaptation").

Every BatchNorm layer's running mean and variance are replaced by their plain average over a sample of the target
photos (each batch's statistics weighed by its photos: a cumulative average, not the last batches'), with every
other module as it predicts (no dropout) and no weight changed. It is the lesson's "recompute BatchNorm statistics on
the target" fix; on the pairs measured here it costs accuracy (bench/domain.py), so the plan keeps it only on evidence
(`engine.plan.adabn`).

The sample is chosen here, by seed, so the plan that scores the fix and the run that applies it read the same photos.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

import numpy as np
import torch
from torch import nn

from engine.model.predict import evaluating

BN_SAMPLE = 256  # target photos the statistics are averaged over (a per-channel mean settles long before this)


def batchnorms(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """The model's BatchNorm layers (none in a transformer or ConvNeXt)."""
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def bn_sample(paths: list[str], seed: int = 0) -> list[str]:
    """At most `BN_SAMPLE` of `paths`, the same ones for the same paths and seed, in their order."""
    if len(paths) <= BN_SAMPLE:
        return list(paths)
    rows = np.sort(np.random.default_rng(seed).choice(len(paths), BN_SAMPLE, replace=False))
    return [paths[i] for i in rows]


@torch.no_grad()
def reestimate(model: nn.Module, batches: Iterator[torch.Tensor], forward: Callable[[torch.Tensor], object]) -> int:
    """Sets every BatchNorm layer of `model` to the average statistics of the inputs in `batches`, each passed through
    `forward` (the part of the model that reaches the layers); returns the number of inputs read. Each layer's momentum
    and mode are restored after; no weight changes.

    Raises:
        ValueError: `model` has no BatchNorm layer, or `batches` held no input.
    """
    layers = batchnorms(model)
    if not layers:
        raise ValueError("this backbone has no BatchNorm layer: there are no statistics to re-estimate")
    saved = [m.momentum for m in layers]
    n = 0
    with evaluating(model):  # every module as it predicts, then each back in its own mode
        for m in layers:
            m.reset_running_stats()
            m.train()
        try:
            for x in batches:
                for m in layers:  # the running average weighs each photo once: a last, short batch counts as its size
                    m.momentum = len(x) / (n + len(x))
                forward(x)
                n += len(x)
        finally:
            for m, momentum in zip(layers, saved):
                m.momentum = momentum
    if not n:
        raise ValueError("no photo to re-estimate the BatchNorm statistics on")
    return n


def bn_buffers(model: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of the running statistics of every BatchNorm layer, by state-dict name."""
    keep = ("running_mean", "running_var", "num_batches_tracked")
    return {k: v.clone() for k, v in model.state_dict().items() if k.rsplit(".", 1)[-1] in keep}


@contextmanager
def statistics_of(
    model: nn.Module, batches: Iterator[torch.Tensor], forward: Callable[[torch.Tensor], object]
) -> Iterator[int]:
    """`model` with its BatchNorm statistics re-estimated on `batches` inside the block, its own after."""
    saved = bn_buffers(model)
    try:
        yield reestimate(model, batches, forward)
    finally:
        model.load_state_dict(saved, strict=False)
